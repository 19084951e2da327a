// Incremental RESP2 request parser: arrays of bulk strings, as every client
// sends them. Binary-safe; headers may be split anywhere across chunks.
// Limits are checked on the header, before any payload is buffered, so a
// client announcing a huge bulk costs nothing. Arguments are zero-copy
// views of the received chunk when they arrived whole, valid during the
// callback only: the caller may reuse the chunk's memory once feed()
// returns, so nothing kept across calls points into it.

export interface RespLimits {
  /** most arguments in one request (command name included) */
  maxArgs: number;
  /** largest bulk string, in bytes */
  maxBulk: number;
  /** longest header line (`*N` / `$N`) before it counts as garbage */
  maxLine: number;
}

// The reference accepts 8 MiB payloads and MGET of 1023 keys.
export const DEFAULT_LIMITS: RespLimits = { maxArgs: 1024, maxBulk: 8 * 1024 * 1024, maxLine: 8192 };

/** Malformed or over-limit input; `reply` is the reference's error text (sent as `-reply`). */
export class RespProtocolError extends Error {
  readonly reply: string;
  constructor(reply: string) {
    super(`RESP protocol error: ${reply}`);
    this.name = 'RespProtocolError';
    this.reply = reply;
  }
}

const ARRAY_HEADER = 0;
const BULK_HEADER = 1;
const BULK_BODY = 2;

const CR = 13;
const LF = 10;

// atoi() semantics, as the reference reads lengths: leading blanks, an
// optional sign, digits up to the first non-digit. Clamped to stay a safe integer.
function atoi(buf: Buffer, start: number, end: number): number {
  let i = start;
  while (i < end && (buf[i] === 32 || buf[i] === 9)) i++;
  let sign = 1;
  if (i < end && (buf[i] === 45 || buf[i] === 43)) {
    if (buf[i] === 45) sign = -1;
    i++;
  }
  let n = 0;
  for (; i < end; i++) {
    const c = buf[i] - 48;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
    if (n > 0x7fffffff) n = 0x7fffffff;
  }
  return sign * n;
}

export class RequestParser {
  private readonly limits: RespLimits;
  private state = ARRAY_HEADER;
  private argc = 0;
  private args: Buffer[] = [];
  // unparsed bytes carried over from the previous chunk (a partial header or a small partial bulk)
  private rest: Buffer | undefined;
  // a bulk larger than what is at hand: filled in place as chunks arrive
  private bulk: Buffer | undefined;
  private bulkFilled = 0;
  private bulkLen = 0;

  constructor(limits: RespLimits = DEFAULT_LIMITS) {
    this.limits = limits;
  }

  /** True while a request is partly received. */
  get pending(): boolean {
    return this.state !== ARRAY_HEADER || this.rest !== undefined;
  }

  /**
   * Parses `chunk`, calling `onRequest` for every complete request in order.
   * Throws RespProtocolError on malformed input; the parser is unusable after that.
   * `onRequest` may return false to stop parsing (the remaining bytes are kept).
   */
  feed(chunk: Buffer, onRequest: (args: Buffer[]) => boolean | void): void {
    this.parse(chunk, onRequest);
    // arguments of a request still incomplete: copied out of the chunk
    const args = this.args;
    for (let i = 0; i < args.length; i++) if (args[i].buffer === chunk.buffer) args[i] = Buffer.from(args[i]);
  }

  private parse(chunk: Buffer, onRequest: (args: Buffer[]) => boolean | void): void {
    let buf = chunk;
    let pos = 0;

    if (this.state === BULK_BODY && this.bulk) {
      const need = this.bulkLen + 2 - this.bulkFilled;
      const take = Math.min(need, buf.length);
      if (this.bulkFilled + take > this.bulk.length) {
        // grown by doubling: memory follows the bytes received, not the announced length
        const grown = Buffer.allocUnsafe(Math.min(this.bulkLen + 2, Math.max(this.bulkFilled + take, this.bulk.length * 2)));
        this.bulk.copy(grown, 0, 0, this.bulkFilled);
        this.bulk = grown;
      }
      buf.copy(this.bulk, this.bulkFilled, 0, take);
      this.bulkFilled += take;
      pos = take;
      if (this.bulkFilled < this.bulkLen + 2) return;
      const whole = this.bulk;
      this.bulk = undefined;
      if (whole[this.bulkLen] !== CR || whole[this.bulkLen + 1] !== LF) throw new RespProtocolError('Malformed query string');
      this.args.push(whole.subarray(0, this.bulkLen));
      if (this.args.length === this.argc) {
        if (!this.emit(onRequest)) {
          this.keep(buf, pos);
          return;
        }
      } else this.state = BULK_HEADER;
    } else if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }

    const end = buf.length;
    while (pos < end) {
      if (this.state === BULK_BODY) {
        const len = this.bulkLen;
        if (end - pos >= len + 2) {
          if (buf[pos + len] !== CR || buf[pos + len + 1] !== LF) throw new RespProtocolError('Malformed query string');
          this.args.push(buf.subarray(pos, pos + len));
          pos += len + 2;
          if (this.args.length === this.argc) {
            if (!this.emit(onRequest)) {
              this.keep(buf, pos);
              return;
            }
          } else this.state = BULK_HEADER;
          continue;
        }
        // Not all here: a big bulk gets its own buffer, filled by later chunks;
        // a small one waits in `rest` with the bytes that follow.
        if (len >= 16384) {
          this.bulk = Buffer.allocUnsafe(Math.min(len + 2, Math.max(2 * (end - pos), 64 * 1024)));
          buf.copy(this.bulk, 0, pos, end);
          this.bulkFilled = end - pos;
          return;
        }
        this.keep(buf, pos);
        return;
      }

      const nl = buf.indexOf(LF, pos);
      if (nl < 0) {
        if (end - pos > this.limits.maxLine) throw new RespProtocolError(this.state === ARRAY_HEADER ? 'Malformed request, array expected' : 'Malformed query string');
        // A header prefix that already cannot be valid is refused now rather than after more bytes.
        if (this.state === ARRAY_HEADER && buf[pos] !== 42) throw new RespProtocolError('Malformed request, array expected');
        if (this.state === BULK_HEADER && buf[pos] !== 36) throw new RespProtocolError('Malformed query string');
        this.keep(buf, pos);
        return;
      }
      if (nl - pos > this.limits.maxLine) throw new RespProtocolError(this.state === ARRAY_HEADER ? 'Malformed request, array expected' : 'Malformed query string');

      if (this.state === ARRAY_HEADER) {
        if (buf[pos] !== 42 /* '*' */) throw new RespProtocolError('Malformed request, array expected');
        const argc = atoi(buf, pos + 1, nl);
        if (argc <= 0) throw new RespProtocolError('Missing arguments');
        if (argc > this.limits.maxArgs) throw new RespProtocolError('Too many arguments');
        this.argc = argc;
        this.args = [];
        this.state = BULK_HEADER;
      } else {
        if (buf[pos] !== 36 /* '$' */) throw new RespProtocolError('Malformed query string');
        const len = atoi(buf, pos + 1, nl);
        if (len < 0) throw new RespProtocolError('Malformed query string');
        if (len > this.limits.maxBulk) throw new RespProtocolError('Payload too big');
        this.bulkLen = len;
        this.state = BULK_BODY;
      }
      pos = nl + 1;
    }
  }

  private emit(onRequest: (args: Buffer[]) => boolean | void): boolean {
    const args = this.args;
    this.args = [];
    this.state = ARRAY_HEADER;
    return onRequest(args) !== false;
  }

  private keep(buf: Buffer, pos: number): void {
    // copy so a kept tail does not pin the whole (possibly 64 KiB) socket chunk
    this.rest = pos < buf.length ? Buffer.from(buf.subarray(pos)) : undefined;
  }

  /** Bytes held back after feed() was stopped by onRequest returning false. */
  takeRest(): Buffer | undefined {
    const r = this.rest;
    this.rest = undefined;
    return r;
  }
}
