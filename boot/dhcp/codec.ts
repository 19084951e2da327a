// DHCP/BOOTP wire codec (RFC 951, RFC 2131, RFC 2132, RFC 3396): pure
// functions over Buffer. Sockets and policy live elsewhere.
import { macFromBytes } from '../../lib/mac.ts';

export interface DhcpPacket {
  op: number; // 1 BOOTREQUEST, 2 BOOTREPLY
  htype: number;
  hlen: number;
  hops: number;
  xid: number; // u32
  secs: number;
  flags: number; // bit 0x8000 = broadcast
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: Buffer; // exactly 16 bytes
  sname: string; // header field; empty when option 52 overloads it
  file: string; // header field; empty when option 52 overloads it
  /**
   * code -> raw value, in order of first appearance. Pad (0) and end (255)
   * never appear. Split instances (RFC 3396), including those continued in
   * file/sname under option 52, are concatenated in order.
   */
  options: Map<number, Buffer>;
}

export class DhcpDecodeError extends Error {
  override name = 'DhcpDecodeError';
}

export class DhcpEncodeError extends Error {
  override name = 'DhcpEncodeError';
}

export const MessageType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;

export const MAGIC_COOKIE = 0x63825363;
/** Fixed BOOTP header (236) plus the magic cookie. */
export const HEADER_SIZE = 240;
/** RFC 951 BOOTP packets carry a 64-byte vendor area: 236 + 64. */
export const BOOTP_MIN_SIZE = 300;
/** RFC 2131: every DHCP client accepts 576-byte messages. */
export const DEFAULT_MAX_SIZE = 576;

const OPT_PAD = 0;
const OPT_END = 255;
const OPT_OVERLOAD = 52;
const OPT_MESSAGE_TYPE = 53;

const SNAME_OFFSET = 44;
const SNAME_SIZE = 64;
const FILE_OFFSET = 108;
const FILE_SIZE = 128;
const CHADDR_SIZE = 16;

/**
 * Decodes a packet. Option values and chaddr are views of a private copy of
 * `buf`, or of `buf` itself when the caller hands it over (`owned`: nothing
 * else will write to it, as with a received datagram).
 */
export function decodeDhcp(buf: Buffer, owned = false): DhcpPacket {
  if (buf.length < HEADER_SIZE) {
    throw new DhcpDecodeError(`DHCP packet is ${buf.length} bytes; a BOOTP header plus magic cookie needs ${HEADER_SIZE}`);
  }
  const cookie = buf.readUInt32BE(236);
  if (cookie !== MAGIC_COOKIE) {
    throw new DhcpDecodeError(`bad DHCP magic cookie 0x${cookie.toString(16).padStart(8, '0')} (want 0x63825363): plain BOOTP or not DHCP`);
  }
  const hlen = buf[2];
  if (hlen > CHADDR_SIZE) throw new DhcpDecodeError(`hardware address length ${hlen} exceeds the 16-byte chaddr field`);

  // One private copy of the packet: option values and chaddr are views of it, so a decoded
  // packet never changes with the buffer it came from, at one copy per packet, not one per option.
  if (!owned) buf = Buffer.from(buf);
  const options = new Map<number, Buffer>();
  parseOptionArea(buf, HEADER_SIZE, buf.length, 'options', options, true);

  let overload = 0;
  const ov = options.get(OPT_OVERLOAD);
  if (ov) {
    if (ov.length !== 1 || ov[0] < 1 || ov[0] > 3) {
      throw new DhcpDecodeError(`option 52 (overload) must be one byte 1, 2 or 3; got ${ov.length} byte(s) ${ov.toString('hex')}`);
    }
    overload = ov[0];
  }
  // RFC 3396 section 7: options field, then file, then sname.
  if (overload & 1) parseOptionArea(buf, FILE_OFFSET, FILE_OFFSET + FILE_SIZE, 'file', options, false);
  if (overload & 2) parseOptionArea(buf, SNAME_OFFSET, SNAME_OFFSET + SNAME_SIZE, 'sname', options, false);

  return {
    op: buf[0],
    htype: buf[1],
    hlen,
    hops: buf[3],
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipAt(buf, 12),
    yiaddr: ipAt(buf, 16),
    siaddr: ipAt(buf, 20),
    giaddr: ipAt(buf, 24),
    chaddr: buf.subarray(28, 28 + CHADDR_SIZE),
    sname: overload & 2 ? '' : cString(buf, SNAME_OFFSET, SNAME_SIZE),
    file: overload & 1 ? '' : cString(buf, FILE_OFFSET, FILE_SIZE),
    options,
  };
}

/**
 * Adds the area's options to `out`, as views of `buf` (decodeDhcp's own copy);
 * a split option (RFC 3396) is joined to its earlier parts.
 */
function parseOptionArea(buf: Buffer, start: number, end: number, area: string, out: Map<number, Buffer>, main: boolean): void {
  let i = start;
  while (i < end) {
    const code = buf[i];
    if (code === OPT_END) return;
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (i + 1 >= end) throw new DhcpDecodeError(`option ${code} at ${area} offset ${i - start} has no length byte`);
    const len = buf[i + 1];
    const valueEnd = i + 2 + len;
    if (valueEnd > end) {
      throw new DhcpDecodeError(`option ${code} at ${area} offset ${i - start} claims ${len} bytes but only ${end - i - 2} remain`);
    }
    if (code === OPT_OVERLOAD && !main) {
      throw new DhcpDecodeError(`option 52 (overload) found inside the ${area} field; it may only appear in the options field`);
    }
    const value = buf.subarray(i + 2, valueEnd);
    const prev = out.get(code);
    out.set(code, prev ? Buffer.concat([prev, value]) : value);
    i = valueEnd;
  }
  // A missing end option is tolerated: several clients pad to the end instead.
}

const ZERO_IP = '0.0.0.0';

function ipAt(buf: Buffer, off: number): string {
  // Most address fields of a request are zero: one shared string instead of a new one per field.
  if ((buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3]) === 0) return ZERO_IP;
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function cString(buf: Buffer, off: number, size: number): string {
  // Clients nearly always leave sname and file empty.
  if (buf[off] === 0) return '';
  const field = buf.subarray(off, off + size);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? size : nul).toString('latin1');
}

/** Parses a dotted quad strictly; undefined when malformed. */
export function parseIpv4(ip: string): Buffer | undefined {
  const b = Buffer.alloc(4);
  return ipv4Into(b, 0, ip) ? b : undefined;
}

/**
 * Writes a strict dotted quad (four groups of 1-3 digits, each at most 255)
 * at `off`; false when malformed. Hand-rolled: it runs four times per reply.
 */
function ipv4Into(buf: Buffer, off: number, ip: string): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || value > 255 || part > 3) return false;
      buf[off + part++] = value;
      digits = 0;
      value = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

interface Area {
  name: string;
  capacity: number; // bytes available for option TLVs (end option excluded)
  chunks: Buffer[];
  used: number;
}

/**
 * Encodes a packet. Option 52 in `p.options` is ignored: the encoder decides
 * overload itself. `maxSize` below 576 is raised to 576 (RFC 2132 9.10: the
 * minimum legal maximum message size).
 */
export function encodeDhcp(p: DhcpPacket, opts: { maxSize?: number } = {}): Buffer {
  const maxSize = Math.max(opts.maxSize ?? DEFAULT_MAX_SIZE, DEFAULT_MAX_SIZE);
  if (!Number.isInteger(maxSize)) throw new DhcpEncodeError(`maxSize must be an integer, got ${opts.maxSize}`);

  let total = 0;
  // forEach, not for-of: for-of made a [code, value] array per option per reply.
  p.options.forEach((value, code) => {
    if (!Number.isInteger(code) || code < 1 || code > 254) {
      throw new DhcpEncodeError(`option code ${code} is not a valid code (1-254; pad and end are written by the encoder)`);
    }
    if (!(value instanceof Uint8Array)) throw new DhcpEncodeError(`option ${code} value must be a Buffer`);
    if (code !== OPT_OVERLOAD) total += tlvSize(value.length);
  });
  const mainCapacity = maxSize - HEADER_SIZE - 1;
  // The common case: every option fits the options field, so the packet is written in one buffer.
  if (total <= mainCapacity) {
    // From Node's shared pool: a fresh zeroed allocation per reply costs more than the fill.
    const out = Buffer.allocUnsafe(Math.max(BOOTP_MIN_SIZE, HEADER_SIZE + total + 1)).fill(0);
    writeHeader(out, p);
    let off = HEADER_SIZE;
    p.options.forEach((value, code) => {
      if (code !== OPT_OVERLOAD) off = putOption(out, off, code, value);
    });
    out[off] = OPT_END;
    return out;
  }

  const header = Buffer.alloc(HEADER_SIZE);
  writeHeader(header, p);
  const options: [number, Buffer][] = [];
  for (const [code, value] of p.options) {
    if (code !== OPT_OVERLOAD) options.push([code, Buffer.from(value.buffer, value.byteOffset, value.byteLength)]);
  }
  const areas: Area[] = [{ name: 'options', capacity: mainCapacity - 3, chunks: [], used: 0 }];
  if (p.file === '') areas.push({ name: 'file', capacity: FILE_SIZE - 1, chunks: [], used: 0 });
  if (p.sname === '') areas.push({ name: 'sname', capacity: SNAME_SIZE - 1, chunks: [], used: 0 });
  if (areas.length === 1 || !pack(options, areas)) {
    const room = areas.reduce((n, a) => n + a.capacity, 0);
    throw new DhcpEncodeError(
      `options need ${total} bytes but only ${room} fit in a ${maxSize}-byte message (options of up to 255 bytes are never split)` +
        (areas.length < 3 ? ' (file/sname are in use, so they cannot hold options)' : ''),
    );
  }
  const main = areas[0];
  let overload = 0;
  for (const a of areas.slice(1)) {
    if (a.used === 0) continue;
    overload |= a.name === 'file' ? 1 : 2;
    const field = Buffer.alloc(a.name === 'file' ? FILE_SIZE : SNAME_SIZE);
    Buffer.concat([...a.chunks, Buffer.from([OPT_END])]).copy(field);
    field.copy(header, a.name === 'file' ? FILE_OFFSET : SNAME_OFFSET);
  }
  return assemble(header, main, overload);
}

/** One option at `off` (a value over 255 bytes as consecutive pieces, RFC 3396, as pack() lays it out); returns the next offset. */
function putOption(out: Buffer, off: number, code: number, value: Uint8Array): number {
  let from = 0;
  do {
    const n = Math.min(255, value.length - from);
    out[off] = code;
    out[off + 1] = n;
    out.set(n === value.length ? value : value.subarray(from, from + n), off + 2);
    off += n + 2;
    from += n;
  } while (from < value.length);
  return off;
}

/** The fixed BOOTP fields and the magic cookie into the first 240 bytes of `buf`, checked. */
function writeHeader(buf: Buffer, p: DhcpPacket): void {
  writeInt(buf, 0, 1, p.op, 'op');
  writeInt(buf, 1, 1, p.htype, 'htype');
  writeInt(buf, 2, 1, p.hlen, 'hlen');
  if (p.hlen > CHADDR_SIZE) throw new DhcpEncodeError(`hlen ${p.hlen} exceeds the 16-byte chaddr field`);
  writeInt(buf, 3, 1, p.hops, 'hops');
  writeInt(buf, 4, 4, p.xid, 'xid');
  writeInt(buf, 8, 2, p.secs, 'secs');
  writeInt(buf, 10, 2, p.flags, 'flags');
  writeIp(buf, 12, p.ciaddr, 'ciaddr');
  writeIp(buf, 16, p.yiaddr, 'yiaddr');
  writeIp(buf, 20, p.siaddr, 'siaddr');
  writeIp(buf, 24, p.giaddr, 'giaddr');
  if (!Buffer.isBuffer(p.chaddr) || p.chaddr.length !== CHADDR_SIZE) {
    throw new DhcpEncodeError(`chaddr must be a 16-byte Buffer (MAC zero-padded), got ${p.chaddr?.length} bytes`);
  }
  p.chaddr.copy(buf, 28);
  writeString(buf, SNAME_OFFSET, SNAME_SIZE, p.sname, 'sname');
  writeString(buf, FILE_OFFSET, FILE_SIZE, p.file, 'file');
  buf.writeUInt32BE(MAGIC_COOKIE, 236);
}

function tlvSize(len: number): number {
  return len === 0 ? 2 : len + 2 * Math.ceil(len / 255);
}

/**
 * Places options first-fit, in Map order, into the areas (options, then file,
 * then sname). Options up to 255 bytes are never split (clients without RFC
 * 3396 support still read them); longer ones are split into pieces of at most
 * 255 bytes that continue in the next area. Re-encoding a decoded packet
 * reproduces the same layout, since decode lists the areas in the same order.
 */
function pack(options: [number, Buffer][], areas: Area[]): boolean {
  for (const [code, value] of options) {
    if (value.length <= 255) {
      const area = areas.find((a) => a.capacity - a.used >= value.length + 2);
      if (!area) return false;
      push(area, code, value);
      continue;
    }
    let off = 0;
    for (const area of areas) {
      while (off < value.length && area.capacity - area.used >= 3) {
        const n = Math.min(255, value.length - off, area.capacity - area.used - 2);
        push(area, code, value.subarray(off, off + n));
        off += n;
      }
    }
    if (off < value.length) return false;
  }
  return true;
}

function push(area: Area, code: number, value: Buffer): void {
  area.chunks.push(Buffer.from([code, value.length]), value);
  area.used += value.length + 2;
}

function assemble(header: Buffer, main: Area, overload: number): Buffer {
  const parts = [header, ...main.chunks];
  if (overload) parts.push(Buffer.from([OPT_OVERLOAD, 1, overload]));
  parts.push(Buffer.from([OPT_END]));
  const body = Buffer.concat(parts);
  if (body.length >= BOOTP_MIN_SIZE) return body;
  const padded = Buffer.alloc(BOOTP_MIN_SIZE);
  body.copy(padded);
  return padded;
}

function writeInt(buf: Buffer, off: number, size: 1 | 2 | 4, v: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** (8 * size)) {
    throw new DhcpEncodeError(`${field} must be an unsigned ${8 * size}-bit integer, got ${v}`);
  }
  buf.writeUIntBE(v, off, size);
}

function writeIp(buf: Buffer, off: number, ip: string, field: string): void {
  if (typeof ip !== 'string' || !ipv4Into(buf, off, ip)) throw new DhcpEncodeError(`${field} must be a dotted-quad IPv4 address, got ${JSON.stringify(ip)}`);
}

// Header strings are latin1 so every byte round-trips; boot file names are ASCII in practice.
function writeString(buf: Buffer, off: number, size: number, s: string, field: string): void {
  if (s === '') return;
  if (typeof s !== 'string' || /[^\x01-\xff]/.test(s)) {
    throw new DhcpEncodeError(`${field} must be a string of latin1 characters without NUL`);
  }
  if (s.length > size) throw new DhcpEncodeError(`${field} is ${s.length} bytes; the BOOTP field holds ${size}`);
  buf.write(s, off, 'latin1');
}

/** "aa:bb:cc:dd:ee:ff" from the first hlen bytes of chaddr (lower-case, colons). */
export function macOf(p: DhcpPacket): string {
  return macFromBytes(p.chaddr, Math.min(p.hlen, CHADDR_SIZE, p.chaddr.length));
}

/** Option 53, or undefined when absent or not exactly one byte. */
export function messageType(p: DhcpPacket): number | undefined {
  const v = p.options.get(OPT_MESSAGE_TYPE);
  return v && v.length === 1 ? v[0] : undefined;
}
