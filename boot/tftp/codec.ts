// TFTP wire format (RFC 1350) with option extension packets (RFC 2347).
// Pure functions over Buffers: decoding throws only TftpDecodeError, encoding
// is total (block numbers are taken modulo 2^16, strings cut at a NUL).

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const ErrorCode = {
  NotDefined: 0,
  FileNotFound: 1,
  AccessViolation: 2,
  DiskFull: 3,
  IllegalOperation: 4,
  UnknownTransferId: 5,
  FileExists: 6,
  NoSuchUser: 7,
  OptionRefused: 8,
} as const;

/** Option name (lower-case) and value, in the order they appeared. */
export type TftpOption = readonly [name: string, value: string];

export interface TftpRequest {
  op: 'rrq' | 'wrq';
  filename: string;
  /** Lower-case. */
  mode: string;
  options: TftpOption[];
}

export type TftpPacket =
  | TftpRequest
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: TftpOption[] };

export class TftpDecodeError extends Error {
  readonly code = 'ETFTPDECODE';
}

/** Decodes one datagram; throws TftpDecodeError on anything malformed. */
export function decode(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpDecodeError(`packet too short (${buf.length} bytes)`);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const r = new StringReader(buf, 2);
      const filename = r.next();
      const mode = r.next();
      if (filename === undefined || mode === undefined) throw new TftpDecodeError('request without NUL-terminated file name and mode');
      if (filename === '') throw new TftpDecodeError('request with an empty file name');
      return { op: op === Opcode.RRQ ? 'rrq' : 'wrq', filename, mode: mode.toLowerCase(), options: readOptions(r) };
    }
    case Opcode.DATA:
      if (buf.length < 4) throw new TftpDecodeError('DATA shorter than its header');
      return { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      // Some ROMs pad ACKs; the block number is all that matters.
      if (buf.length < 4) throw new TftpDecodeError('ACK shorter than 4 bytes');
      return { op: 'ack', block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) throw new TftpDecodeError('ERROR shorter than its header');
      const end = buf.indexOf(0, 4);
      return { op: 'error', code: buf.readUInt16BE(2), message: buf.toString('utf8', 4, end < 0 ? buf.length : end) };
    }
    case Opcode.OACK:
      return { op: 'oack', options: readOptions(new StringReader(buf, 2)) };
    default:
      throw new TftpDecodeError(`unknown opcode ${op}`);
  }
}

/** Reads the opcode and block of an ACK without allocating; undefined if `buf` is not an ACK. */
export function peekAck(buf: Buffer): number | undefined {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== Opcode.ACK) return undefined;
  return (buf[2]! << 8) | buf[3]!;
}

class StringReader {
  private readonly buf: Buffer;
  private pos: number;
  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }
  /** The next NUL-terminated string, or undefined if none is complete. */
  next(): string | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) return undefined;
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
}

function readOptions(r: StringReader): TftpOption[] {
  const options: TftpOption[] = [];
  for (;;) {
    const name = r.next();
    if (name === undefined) break;
    const value = r.next();
    // A dangling name or trailing padding (seen from some PXE ROMs) is not an option.
    if (value === undefined) break;
    if (name === '') continue;
    options.push([name.toLowerCase(), value]);
  }
  return options;
}

function cstr(s: string): Buffer {
  const nul = s.indexOf('\0');
  return Buffer.from((nul < 0 ? s : s.slice(0, nul)) + '\0', 'utf8');
}

export function encodeRequest(op: 'rrq' | 'wrq', filename: string, mode = 'octet', options: readonly TftpOption[] = []): Buffer {
  const parts = [header(op === 'rrq' ? Opcode.RRQ : Opcode.WRQ), cstr(filename), cstr(mode)];
  for (const [n, v] of options) parts.push(cstr(n), cstr(v));
  return Buffer.concat(parts);
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  writeDataHeader(out, block);
  out.set(data, 4);
  return out;
}

/** Writes a DATA header into the first 4 bytes of `out` (for callers that fill the payload in place). */
export function writeDataHeader(out: Buffer, block: number): void {
  out[0] = 0;
  out[1] = Opcode.DATA;
  out[2] = (block >>> 8) & 0xff;
  out[3] = block & 0xff;
}

export function encodeAck(block: number): Buffer {
  const out = header(Opcode.ACK, 4);
  out.writeUInt16BE(block & 0xffff, 2);
  return out;
}

export function encodeError(code: number, message: string): Buffer {
  const out = header(Opcode.ERROR, 4);
  out.writeUInt16BE(code & 0xffff, 2);
  return Buffer.concat([out, cstr(message)]);
}

export function encodeOack(options: readonly TftpOption[]): Buffer {
  const parts = [header(Opcode.OACK)];
  for (const [n, v] of options) parts.push(cstr(n), cstr(v));
  return Buffer.concat(parts);
}

function header(op: number, size = 2): Buffer {
  const out = Buffer.alloc(size);
  out[1] = op;
  return out;
}
