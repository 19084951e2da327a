// The TFTP server's limits, checked once at start: a bad value is a
// configuration error (TftpServerError), never a surprise mid-transfer.
import { interfaceForAddress, interfaceMtu } from '../netif/index.ts';

export class TftpServerError extends Error {}

export const DEFAULT_MAX_TRANSFERS_PER_CLIENT = 4;
export const DEFAULT_FIRST_RETRIES = 3;
/** Requests that may wait for a slot when all are taken (a few hundred bytes each). */
export const DEFAULT_MAX_WAITING = 1024;
/** A waiting request is served only if its client sent it (or a retransmission) this recently. */
export const WAIT_FRESH_MS = 10_000;

export interface LimitOptions {
  /** IPv4 bind address, e.g. '0.0.0.0' or the interface address. */
  address: string;
  /** Caps blksize; default: the MTU of the interface holding `address`, else 1500. */
  mtu?: number;
  maxTransfers: number;
  /**
   * Concurrent transfers one client address may hold; default 4. A booting
   * machine reads one file at a time (firmware, iPXE, shim and GRUB all do),
   * so 4 leaves room for a size probe still open and a restart from a new
   * port while the old transfer times out, and one host still holds at most
   * 4 of the 64 default slots.
   */
  maxTransfersPerClient?: number;
  /** Retransmission timeout when the client does not negotiate one. */
  timeoutMs: number;
  /** Retransmissions without progress before a transfer is abandoned. */
  retries: number;
  /**
   * Retransmissions of a transfer's first packet (OACK or DATA 1) that was
   * never acknowledged, at the plain timeout; default 3 (4 s at the default
   * 1 s timeout). Frees the slots of spoofed or abandoned requests quickly.
   */
  firstRetries?: number;
  /**
   * Requests that wait for a slot when all are taken, instead of getting
   * ERROR "server busy" (on which PXE firmware abandons the boot); default
   * 1024, at most maxTransfersPerClient per client address. Beyond it: ERROR.
   */
  maxWaiting?: number;
}

/** The limits with their defaults filled in. */
export interface TftpLimits {
  mtu: number;
  maxTransfers: number;
  perClient: number;
  timeoutMs: number;
  retries: number;
  firstRetries: number;
  maxWaiting: number;
  waitFreshMs: number;
}

export function resolveLimits(opts: LimitOptions): TftpLimits {
  if (!Number.isInteger(opts.maxTransfers) || opts.maxTransfers < 1) throw new TftpServerError(`maxTransfers must be a positive integer, got ${opts.maxTransfers}`);
  if (!(opts.timeoutMs > 0)) throw new TftpServerError(`timeoutMs must be positive, got ${opts.timeoutMs}`);
  if (!Number.isInteger(opts.retries) || opts.retries < 0) throw new TftpServerError(`retries must be a non-negative integer, got ${opts.retries}`);
  const perClient = opts.maxTransfersPerClient ?? DEFAULT_MAX_TRANSFERS_PER_CLIENT;
  if (!Number.isInteger(perClient) || perClient < 1) throw new TftpServerError(`maxTransfersPerClient must be a positive integer, got ${perClient}`);
  const firstRetries = opts.firstRetries ?? DEFAULT_FIRST_RETRIES;
  if (!Number.isInteger(firstRetries) || firstRetries < 0) throw new TftpServerError(`firstRetries must be a non-negative integer, got ${firstRetries}`);
  const maxWaiting = opts.maxWaiting ?? DEFAULT_MAX_WAITING;
  if (!Number.isInteger(maxWaiting) || maxWaiting < 0) throw new TftpServerError(`maxWaiting must be a non-negative integer, got ${maxWaiting}`);
  const mtu = opts.mtu ?? defaultMtu(opts.address);
  return { mtu, maxTransfers: opts.maxTransfers, perClient, timeoutMs: opts.timeoutMs, retries: opts.retries, firstRetries, maxWaiting, waitFreshMs: WAIT_FRESH_MS };
}

function defaultMtu(address: string): number {
  const ifname = interfaceForAddress(address);
  return ifname ? interfaceMtu(ifname) : 1500;
}
