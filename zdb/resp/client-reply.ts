// Incremental RESP2 reply parser, the client's side of parser.ts: simple
// strings, errors, integers, bulk strings and (nested) arrays, null bulk and
// null array included. Limits are checked on each header before its payload
// is awaited, so a peer announcing a huge bulk or array is refused at once.
import { RespProtocolError } from './parser.ts';

export type RespReply =
  | { type: 'simple'; text: string }
  | { type: 'error'; text: string }
  | { type: 'integer'; value: bigint }
  | { type: 'bulk'; value: Buffer | null }
  | { type: 'array'; items: RespReply[] | null };

export interface ReplyLimits {
  /** largest bulk string, in bytes */
  maxBulk: number;
  /** most elements in one array */
  maxItems: number;
  /** longest line (a header, a simple string, an error) */
  maxLine: number;
  /** deepest nesting of arrays */
  maxDepth: number;
}

// 0-db answers at most 8 MiB values; SCAN batches and INFO stay far below the rest.
export const DEFAULT_REPLY_LIMITS: ReplyLimits = { maxBulk: 8 * 1024 * 1024, maxItems: 1 << 16, maxLine: 64 * 1024, maxDepth: 8 };

const CR = 13;
const LF = 10;

// Thrown inside a parse that ran out of bytes; `need` is the buffer length that could complete it.
class Incomplete {
  readonly need: number;
  constructor(need: number) {
    this.need = need;
  }
}

export class ReplyParser {
  private readonly limits: ReplyLimits;
  private chunks: Buffer[] = [];
  private length = 0;
  // no parse is tried before this many bytes are held (a bulk's announced end)
  private need = 1;

  constructor(limits: ReplyLimits = DEFAULT_REPLY_LIMITS) {
    this.limits = limits;
  }

  /** Bytes received and not yet returned as a reply. */
  get buffered(): number {
    return this.length;
  }

  /** Adds received bytes and returns every reply they complete, in order. Throws RespProtocolError on malformed or over-limit input. */
  feed(chunk: Buffer): RespReply[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out: RespReply[] = [];
    while (this.length >= this.need) {
      // Joined only when a reply may be complete: a big bulk arriving in many chunks is copied once.
      const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      let at = 0;
      try {
        for (;;) {
          const r = this.reply(buf, at, 0);
          out.push(r.value);
          at = r.next;
          if (at === buf.length) break;
        }
        this.need = 1;
      } catch (e) {
        if (!(e instanceof Incomplete)) throw e;
        this.need = e.need - at;
      }
      const rest = buf.subarray(at);
      // a kept tail is copied so it does not pin the whole chunk
      this.chunks = rest.length === 0 ? [] : [at === 0 ? rest : Buffer.from(rest)];
      this.length = rest.length;
      if (this.need <= this.length) this.need = this.length + 1;
    }
    return out;
  }

  private line(buf: Buffer, at: number): { text: string; next: number } {
    const max = this.limits.maxLine;
    const nl = buf.indexOf(LF, at);
    if (nl < 0) {
      if (buf.length - at > max) throw new RespProtocolError(`reply line longer than ${max} bytes`);
      throw new Incomplete(buf.length + 1);
    }
    if (nl - at > max) throw new RespProtocolError(`reply line longer than ${max} bytes`);
    if (nl === at || buf[nl - 1] !== CR) throw new RespProtocolError('reply line not ended by CRLF');
    return { text: buf.toString('latin1', at, nl - 1), next: nl + 1 };
  }

  private length_(text: string, what: string): number {
    if (!/^-?\d{1,15}$/.test(text)) throw new RespProtocolError(`bad ${what} length ${JSON.stringify(text.slice(0, 20))}`);
    return Number(text);
  }

  private reply(buf: Buffer, at: number, depth: number): { value: RespReply; next: number } {
    if (at >= buf.length) throw new Incomplete(at + 1);
    const kind = buf[at];
    const l = this.line(buf, at + 1);
    switch (kind) {
      case 43 /* + */:
        return { value: { type: 'simple', text: l.text }, next: l.next };
      case 45 /* - */:
        return { value: { type: 'error', text: l.text }, next: l.next };
      case 58 /* : */: {
        if (!/^-?\d{1,19}$/.test(l.text)) throw new RespProtocolError(`bad integer reply ${JSON.stringify(l.text.slice(0, 20))}`);
        return { value: { type: 'integer', value: BigInt(l.text) }, next: l.next };
      }
      case 36 /* $ */: {
        const n = this.length_(l.text, 'bulk');
        if (n < 0) return { value: { type: 'bulk', value: null }, next: l.next };
        if (n > this.limits.maxBulk) throw new RespProtocolError(`bulk reply of ${n} bytes, over the limit of ${this.limits.maxBulk}`);
        const end = l.next + n;
        if (buf.length < end + 2) throw new Incomplete(end + 2);
        if (buf[end] !== CR || buf[end + 1] !== LF) throw new RespProtocolError('bulk reply not ended by CRLF');
        // copied: the reply outlives the received chunk
        return { value: { type: 'bulk', value: Buffer.from(buf.subarray(l.next, end)) }, next: end + 2 };
      }
      case 42 /* * */: {
        const n = this.length_(l.text, 'array');
        if (n < 0) return { value: { type: 'array', items: null }, next: l.next };
        if (n > this.limits.maxItems) throw new RespProtocolError(`array reply of ${n} items, over the limit of ${this.limits.maxItems}`);
        if (depth + 1 > this.limits.maxDepth) throw new RespProtocolError(`array reply nested deeper than ${this.limits.maxDepth}`);
        const items: RespReply[] = [];
        let next = l.next;
        for (let i = 0; i < n; i++) {
          const r = this.reply(buf, next, depth + 1);
          items.push(r.value);
          next = r.next;
        }
        return { value: { type: 'array', items }, next };
      }
      default:
        throw new RespProtocolError(`not a RESP reply: ${JSON.stringify(buf.toString('latin1', at, Math.min(buf.length, at + 40)))}`);
    }
  }
}
