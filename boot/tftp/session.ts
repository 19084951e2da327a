// One read transfer as a pure state machine: option negotiation, the send
// window, ACK handling and retransmission. No sockets, no clock: the server
// feeds it events (ACK, ERROR, timeout) and it answers through SessionOutput.
// Block numbers here are absolute (1, 2, ... past 65535); the wire number is
// the absolute number modulo 2^16, so block 65536 goes out as 0 (rollover).
import type { TftpOption } from './codec.ts';

export const DEFAULT_BLKSIZE = 512;
export const MAX_BLKSIZE = 65464; // RFC 2348
export const MIN_BLKSIZE = 8;
export const MAX_WINDOWSIZE = 64; // RFC 7440 allows 65535; gains level off near 64
/** IPv4 (20) + UDP (8) + TFTP DATA header (4). */
export const DATA_OVERHEAD = 32;

export interface NegotiationLimits {
  /** MTU of the interface the transfer goes out on; caps blksize. */
  mtu: number;
  /** Retransmission timeout used when the client does not ask for one. */
  defaultTimeoutMs: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Options to acknowledge in an OACK, in the client's order; empty means no OACK. */
  oack: TftpOption[];
}

/**
 * Applies RFC 2347/2348/2349/7440 to a read request's options. Only options
 * the client sent appear in the OACK; unknown or invalid ones are ignored
 * (the transfer then uses the RFC 1350 default for them).
 */
export function negotiate(requested: readonly TftpOption[], fileSize: number, limits: NegotiationLimits): Negotiated {
  const result: Negotiated = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: limits.defaultTimeoutMs, oack: [] };
  const seen = new Set<string>();
  const maxBlk = Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, limits.mtu - DATA_OVERHEAD));
  for (const [name, value] of requested) {
    if (seen.has(name)) continue;
    seen.add(name);
    const n = decimal(value);
    switch (name) {
      case 'blksize':
        // The server may answer with a smaller size than asked (RFC 2348), never a larger one.
        if (n === undefined || n < MIN_BLKSIZE) break;
        result.blksize = Math.min(n, maxBlk);
        result.oack.push([name, String(result.blksize)]);
        break;
      case 'tsize':
        // For a read the client sends 0 and the server answers with the size (RFC 2349).
        if (n === undefined) break;
        result.oack.push([name, String(fileSize)]);
        break;
      case 'timeout':
        // The server must echo the value unchanged or not acknowledge it.
        if (n === undefined || n < 1 || n > 255) break;
        result.timeoutMs = n * 1000;
        result.oack.push([name, String(n)]);
        break;
      case 'windowsize':
        if (n === undefined || n < 1) break;
        result.windowsize = Math.min(n, MAX_WINDOWSIZE);
        result.oack.push([name, String(result.windowsize)]);
        break;
      default:
        break;
    }
  }
  return result;
}

function decimal(s: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(s)) return undefined;
  return Number(s);
}

export interface SessionOutput {
  sendOack(options: readonly TftpOption[]): void;
  /** Send DATA for absolute blocks first .. first+count-1. */
  sendBlocks(first: number, count: number): void;
  /** (Re)start the retransmission timer: something was just sent. */
  armTimer(ms: number): void;
  /** Every block was acknowledged. */
  finish(): void;
  /** The transfer is over without success; `error` is sent to the peer when set. */
  fail(reason: string, error?: { code: number; message: string }): void;
}

export interface ReadSessionOptions {
  size: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Retransmissions allowed without progress before giving up. */
  retries: number;
  /**
   * Retransmissions of the first packet (OACK or DATA 1) while the peer has
   * never answered; default `retries`. Never more than `retries`.
   */
  firstRetries?: number;
  oack: readonly TftpOption[];
}

export type SessionState = 'idle' | 'oack' | 'data' | 'done' | 'failed';

/**
 * Ceiling of the retransmission backoff. Each retransmission without progress
 * doubles the wait (RFC 1123 4.2.3.2 asks for exponential backoff), so a peer
 * that is only slow for a while (a loaded host, a lossy link) is not dropped
 * after retries x timeout; progress resets the wait.
 */
export const MAX_BACKOFF_MS = 8000;

// Until the peer's first ACK the wait does not back off and the budget is
// `firstRetries`: a live client answers the first packet at once, so silence
// means a spoofed or abandoned request, and its slot should free within a few
// timeouts rather than the ~31 s the backoff would stretch it to.

export class ReadSession {
  readonly size: number;
  readonly blksize: number;
  readonly windowsize: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly firstRetries: number;
  /** The last block, always short (possibly empty) so the client knows the end. */
  readonly lastBlock: number;
  private readonly oack: readonly TftpOption[];
  private readonly out: SessionOutput;
  private st: SessionState = 'idle';
  /** Highest block the peer acknowledged in order (0 = none, or the OACK). */
  private ackedBlock = 0;
  /** Highest block sent so far. */
  private sentBlock = 0;
  private tries = 0;
  /** The peer has acknowledged something (the OACK or a block). */
  private heard = false;
  /** A duplicate ACK already triggered a resend of the current window. */
  private dupResent = false;
  retransmissions = 0;

  constructor(opts: ReadSessionOptions, out: SessionOutput) {
    this.size = opts.size;
    this.blksize = opts.blksize;
    this.windowsize = opts.windowsize;
    this.timeoutMs = opts.timeoutMs;
    this.retries = opts.retries;
    this.firstRetries = Math.min(opts.firstRetries ?? opts.retries, opts.retries);
    this.oack = opts.oack;
    this.out = out;
    this.lastBlock = Math.floor(opts.size / opts.blksize) + 1;
  }

  get state(): SessionState {
    return this.st;
  }
  get acked(): number {
    return this.ackedBlock;
  }
  get sent(): number {
    return this.sentBlock;
  }

  /** Byte range [start, end) of an absolute block. */
  blockRange(block: number): [number, number] {
    const start = (block - 1) * this.blksize;
    return [start, Math.min(this.size, start + this.blksize)];
  }

  start(): void {
    if (this.st !== 'idle') return;
    if (this.oack.length > 0) {
      this.st = 'oack';
      this.out.sendOack(this.oack);
      this.out.armTimer(this.wait());
      return;
    }
    this.st = 'data';
    this.sendWindow();
  }

  onAck(wireBlock: number): void {
    if (this.st === 'oack') {
      // Only ACK 0 confirms the OACK (RFC 2347); anything else is stale.
      if (wireBlock !== 0) return;
      this.st = 'data';
      this.heard = true;
      this.tries = 0;
      this.sendWindow();
      return;
    }
    if (this.st !== 'data') return;
    const block = this.absolute(wireBlock);
    if (block === undefined) return;
    if (block === this.ackedBlock) {
      this.onDuplicateAck();
      return;
    }
    this.ackedBlock = block;
    this.heard = true;
    this.tries = 0;
    this.dupResent = false;
    if (block === this.lastBlock) {
      this.st = 'done';
      this.out.finish();
      return;
    }
    // Either the whole window arrived, or the peer acknowledged a block inside
    // it (it lost the next one): both continue right after the ACKed block.
    this.sendWindow();
  }

  onError(code: number, message: string): void {
    if (this.st === 'done' || this.st === 'failed') return;
    this.st = 'failed';
    this.out.fail(`peer sent error ${code}: ${message}`);
  }

  onTimeout(): void {
    if (this.st !== 'oack' && this.st !== 'data') return;
    if (this.tries >= (this.heard ? this.retries : this.firstRetries)) {
      this.st = 'failed';
      this.out.fail(`no answer after ${this.tries} retransmissions`, { code: 0, message: 'timed out' });
      return;
    }
    this.tries++;
    this.retransmissions++;
    if (this.st === 'oack') {
      this.out.sendOack(this.oack);
      this.out.armTimer(this.wait());
      return;
    }
    this.sendWindow();
  }

  /** The wait before the next retransmission: doubled per try without progress, capped; flat until the peer first answers. */
  wait(): number {
    if (!this.heard) return this.timeoutMs;
    return Math.min(this.timeoutMs * 2 ** this.tries, Math.max(this.timeoutMs, MAX_BACKOFF_MS));
  }

  /** Stops the session (server shutdown, unreadable file); `error` goes to the peer when set. */
  abort(reason: string, error?: { code: number; message: string }): void {
    if (this.st === 'done' || this.st === 'failed') return;
    this.st = 'failed';
    this.out.fail(reason, error);
  }

  private sendWindow(): void {
    const first = this.ackedBlock + 1;
    const count = Math.min(this.windowsize, this.lastBlock - this.ackedBlock);
    this.sentBlock = first + count - 1;
    this.out.sendBlocks(first, count);
    this.out.armTimer(this.wait());
  }

  private onDuplicateAck(): void {
    // With a window of one, answering a duplicate ACK doubles every packet
    // from then on (Sorcerer's Apprentice, RFC 1350 errata); the timer
    // retransmits instead. With a larger window the duplicate says the first
    // block of the window was lost: resend once, then leave it to the timer.
    if (this.windowsize === 1 || this.dupResent) return;
    this.dupResent = true;
    this.retransmissions++;
    this.sendWindow();
  }

  /** Maps a 16-bit ACK number onto [acked, sent]; undefined when outside. */
  private absolute(wireBlock: number): number | undefined {
    const offset = (wireBlock - this.ackedBlock) & 0xffff;
    const block = this.ackedBlock + offset;
    return block <= this.sentBlock ? block : undefined;
  }
}
