// The TFTP server: one listen socket for requests, one Transfer (with its own
// socket) per accepted read. Read-only, files come from the image store, a
// cap on concurrent transfers overall and per client address, and nothing a
// client sends can stop it.
//
// Modes: "octet" and "netascii" are both served byte for byte. Boot files are
// binary, and converting line ends would make tsize and the block offsets
// depend on the content; RFC 1350 clients asking netascii for a boot program
// get the exact bytes. "mail" (obsolete) is refused.
import dgram from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { ErrorCode, TftpDecodeError, decode, encodeError } from './codec.ts';
import type { TftpPacket, TftpRequest } from './codec.ts';
import { negotiate } from './session.ts';
import { Transfer } from './transfer.ts';
import { TransferSlots } from './slots.ts';
import { StoreNotFoundError, StorePathError } from '../store.ts';
import type { ImageStore, StoreEntry } from '../store.ts';
import type { BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';
import { interfaceForAddress, interfaceMtu } from '../netif/index.ts';

export interface TftpServerOptions {
  store: ImageStore;
  /** IPv4 bind address, e.g. '0.0.0.0' or the interface address. */
  address: string;
  /** 69 normally; 0 picks a free port. */
  port: number;
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
  timeline: BootTimeline;
  /** Files boot loaders probe for and do without: a miss is no error (logged at debug, marked optional). */
  optionalFiles?: RegExp;
  /** TFTP carries no MAC; the DHCP server can map the client address to one. */
  macForIp?: (ip: string) => string | undefined;
  log: Logger;
}

export interface TftpServer {
  close(): Promise<void>;
  port: number;
  activeTransfers(): number;
}

export class TftpServerError extends Error {}

const SERVED_MODES = new Set(['octet', 'netascii']);
export const DEFAULT_MAX_TRANSFERS_PER_CLIENT = 4;
export const DEFAULT_FIRST_RETRIES = 3;

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  if (!Number.isInteger(opts.maxTransfers) || opts.maxTransfers < 1) throw new TftpServerError(`maxTransfers must be a positive integer, got ${opts.maxTransfers}`);
  if (!(opts.timeoutMs > 0)) throw new TftpServerError(`timeoutMs must be positive, got ${opts.timeoutMs}`);
  if (!Number.isInteger(opts.retries) || opts.retries < 0) throw new TftpServerError(`retries must be a non-negative integer, got ${opts.retries}`);
  const perClient = opts.maxTransfersPerClient ?? DEFAULT_MAX_TRANSFERS_PER_CLIENT;
  if (!Number.isInteger(perClient) || perClient < 1) throw new TftpServerError(`maxTransfersPerClient must be a positive integer, got ${perClient}`);
  const firstRetries = opts.firstRetries ?? DEFAULT_FIRST_RETRIES;
  if (!Number.isInteger(firstRetries) || firstRetries < 0) throw new TftpServerError(`firstRetries must be a non-negative integer, got ${firstRetries}`);
  const mtu = opts.mtu ?? defaultMtu(opts.address);
  const { log, timeline } = opts;
  const transfers = new TransferSlots<Transfer | 'opening'>();
  let closing = false;

  const socket = dgram.createSocket('udp4');
  socket.on('error', (e) => log.warn('tftp listen socket error', { error: e.message }));
  socket.on('message', (msg, rinfo) => {
    // Port 0 cannot be answered (dgram's send throws on it): a forged packet.
    if (rinfo.port === 0) return;
    let pkt: TftpPacket;
    try {
      pkt = decode(msg);
    } catch (e) {
      const error = e instanceof TftpDecodeError ? e.message : String(e);
      log.debug('tftp malformed request ignored', { from: `${rinfo.address}:${rinfo.port}`, bytes: msg.length, error });
      return;
    }
    if (pkt.op === 'rrq') {
      handleRead(pkt, rinfo).catch((e: unknown) => log.error('tftp request failed', { from: rinfo.address, error: String(e) }));
    } else if (pkt.op === 'wrq') {
      refuse(rinfo, pkt.filename, ErrorCode.AccessViolation, 'read-only server', 'write request refused (read-only)');
    } else {
      log.debug('tftp packet on the request port ignored', { from: `${rinfo.address}:${rinfo.port}`, op: pkt.op });
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: opts.address, port: opts.port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((e: Error) => {
    // The failed bind still created the socket's file descriptor.
    socket.close();
    throw new TftpServerError(`cannot listen on ${opts.address}:${opts.port}/udp: ${e.message}`);
  });
  const port = socket.address().port;
  log.info('tftp listening', { address: opts.address, port, mtu, maxTransfers: opts.maxTransfers, maxTransfersPerClient: perClient });

  function macKey(ip: string): string {
    return opts.macForIp?.(ip) ?? `ip:${ip}`;
  }

  /** `detail`: more of what the client sent, kept in fields (the logger escapes them). */
  function refuse(to: RemoteInfo, file: string, code: number, message: string, reason: string, detail: Record<string, string> = {}): void {
    const optional = code === ErrorCode.FileNotFound && opts.optionalFiles?.test(file.replace(/\\/g, '/')) === true;
    if (optional) log.debug('tftp optional file not found', { from: to.address, file });
    else log.info('tftp request refused', { from: to.address, file, ...detail, reason });
    timeline.record(macKey(to.address), 'tftp.error', { file, client: to.address, ...detail, ...(optional ? { optional: true } : {}) }, optional ? `${reason} (optional: the loader goes on without it)` : reason);
    socket.send(encodeError(code, message), to.port, to.address);
  }

  async function handleRead(req: TftpRequest, from: RemoteInfo): Promise<void> {
    if (closing) return;
    const key = `${from.address}:${from.port}`;
    const existing = transfers.get(from);
    if (existing) {
      // A retransmitted request: the running transfer answers it by its own timer.
      if (existing === 'opening' || existing.session.acked === 0) {
        log.debug('tftp duplicate request ignored', { from: key, file: req.filename });
        return;
      }
      // Same client port, transfer under way: the client has started over.
      existing.abort('client sent a new request from the same port');
      transfers.delete(from);
    }
    if (!SERVED_MODES.has(req.mode)) {
      refuse(from, req.filename, ErrorCode.IllegalOperation, `mode not supported: ${req.mode.slice(0, 64)}`, 'mode not supported', { mode: req.mode });
      return;
    }
    if (transfers.heldBy(from.address) >= perClient) {
      refuse(from, req.filename, ErrorCode.NotDefined, 'too many transfers from your address', `too many transfers from this address (${perClient})`);
      return;
    }
    if (transfers.size >= opts.maxTransfers) {
      refuse(from, req.filename, ErrorCode.NotDefined, 'server busy', `server busy (${transfers.size} transfers)`);
      return;
    }
    transfers.set(from, 'opening');
    let entry: StoreEntry;
    try {
      entry = await opts.store.open(req.filename);
    } catch (e) {
      transfers.delete(from);
      if (e instanceof StorePathError) refuse(from, req.filename, ErrorCode.AccessViolation, 'access violation', e.message);
      else if (e instanceof StoreNotFoundError) refuse(from, req.filename, ErrorCode.FileNotFound, 'file not found', e.message);
      else if ((e as NodeJS.ErrnoException).code === 'EACCES') refuse(from, req.filename, ErrorCode.AccessViolation, 'access violation', String(e));
      else refuse(from, req.filename, ErrorCode.NotDefined, 'cannot open file', String(e));
      return;
    }
    if (closing) {
      transfers.delete(from);
      await entry.close().catch(() => undefined);
      return;
    }
    const n = negotiate(req.options, entry.size, { mtu, defaultTimeoutMs: opts.timeoutMs });
    const transfer = new Transfer({
      entry,
      peer: { address: from.address, port: from.port },
      bindAddress: opts.address,
      blksize: n.blksize,
      windowsize: n.windowsize,
      timeoutMs: n.timeoutMs,
      retries: opts.retries,
      firstRetries,
      oack: n.oack,
      log,
    });
    transfers.set(from, transfer);
    const mac = macKey(from.address);
    const askedTsize = n.oack.some(([name]) => name === 'tsize');
    const sizeProbe = (reason: string) => askedTsize && transfer.session.acked === 0 && reason.startsWith(`peer sent error ${ErrorCode.OptionRefused}:`);
    timeline.record(mac, 'tftp.request', { file: entry.path, client: from.address, size: entry.size, blksize: n.blksize, windowsize: n.windowsize });
    void transfer.done.then((r) => {
      if (transfers.get(from) === transfer) transfers.delete(from);
      if (r.ok) {
        const mibps = r.bytes / 1048576 / Math.max(r.ms / 1000, 0.001);
        log.info('tftp transfer done', { from: key, file: entry.path, bytes: r.bytes, ms: r.ms, MiBps: Number(mibps.toFixed(1)), retransmissions: r.retransmissions });
        timeline.record(mac, 'tftp.done', { file: entry.path, bytes: r.bytes, ms: r.ms });
      } else if (sizeProbe(r.reason)) {
        // RFC 2349 clients (PXE firmware) ask for tsize, read the OACK and
        // end with error 8 before the real download: routine, not a failure.
        log.debug('tftp size probe', { from: key, file: entry.path });
        timeline.record(mac, 'tftp.error', { file: entry.path, client: from.address, probe: true }, 'size probe: the client read tsize and ended the transfer before the download, as PXE firmware does');
      } else {
        log.warn('tftp transfer failed', { from: key, file: entry.path, reason: r.reason });
        timeline.record(mac, 'tftp.error', { file: entry.path, client: from.address }, r.reason);
      }
    });
    try {
      const tid = await transfer.start();
      log.info('tftp transfer started', { from: key, file: entry.path, tid, blksize: n.blksize, windowsize: n.windowsize, oack: n.oack.length > 0 });
    } catch (e) {
      transfer.abort(`cannot open a transfer socket: ${(e as Error).message}`);
    }
  }

  return {
    port,
    activeTransfers: () => transfers.size,
    async close() {
      if (closing) return;
      closing = true;
      const running: Promise<unknown>[] = [];
      for (const t of transfers.values()) {
        if (t === 'opening') continue;
        t.abort('server closing');
        running.push(t.done);
      }
      await Promise.all(running);
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

function defaultMtu(address: string): number {
  const ifname = interfaceForAddress(address);
  return ifname ? interfaceMtu(ifname) : 1500;
}
