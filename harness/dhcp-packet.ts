// A minimal DHCP message writer and reader for the test peers and the
// benchmark senders, written from RFC 2131 §2 (the fixed BOOTP layout) and
// RFC 2132 (options), independently of boot/dhcp/codec.ts, so a test that
// checks the server's packets does not read them with the code under test.
//
// Fixed layout (RFC 2131 figure 1), byte offsets:
//   0 op | 1 htype | 2 hlen | 3 hops | 4-7 xid | 8-9 secs | 10-11 flags
//   12-15 ciaddr | 16-19 yiaddr | 20-23 siaddr | 24-27 giaddr
//   28-43 chaddr (16) | 44-107 sname (64) | 108-235 file (128)
//   236-239 magic cookie 99.130.83.99 | 240- options
// Options (RFC 2132 §2-3): code, length, value; 0 is a lone pad byte, 255
// the end. Option 52 (overload, §9.3) says file (1), sname (2) or both (3)
// hold more options. A code seen twice is one value, the parts joined (RFC 3396).

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** the first hlen bytes of chaddr, as aa:bb:... */
  chaddr: string;
  sname: string;
  file: string;
  /** in the order they came; codes are unique (repeated parts joined) */
  options: [number, Buffer][];
}

const COOKIE = Buffer.from([99, 130, 83, 99]);
const OPTIONS_AT = 240;
// RFC 1542 §3.1: a BOOTP message is at least 300 bytes, so short ones are padded.
const MIN_SIZE = 300;

function ipv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

function putIpv4(buf: Buffer, at: number, ip: string): void {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  buf.set(parts, at);
}

// a NUL-terminated text field (sname, file)
function text(buf: Buffer, at: number, size: number): string {
  const field = buf.subarray(at, at + size);
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? size : nul);
}

export interface MessageFields {
  op?: number;
  mac: string;
  xid: number;
  secs?: number;
  flags?: number;
  hops?: number;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  file?: string;
  /** written in this order; values up to 255 bytes */
  options: [number, Buffer][];
}

/** Writes a DHCP message (Ethernet, htype 1) with the options given, then the end option, padded to 300 bytes. */
export function encodeMessage(m: MessageFields): Buffer {
  const optionBytes = m.options.reduce((n, [, v]) => n + 2 + v.length, 0) + 1;
  const buf = Buffer.alloc(Math.max(MIN_SIZE, OPTIONS_AT + optionBytes));
  const mac = Buffer.from(m.mac.replace(/[:-]/g, ''), 'hex');
  buf[0] = m.op ?? 1;
  buf[1] = 1;
  buf[2] = mac.length;
  buf[3] = m.hops ?? 0;
  buf.writeUInt32BE(m.xid >>> 0, 4);
  buf.writeUInt16BE(m.secs ?? 0, 8);
  buf.writeUInt16BE(m.flags ?? 0, 10);
  putIpv4(buf, 12, m.ciaddr ?? '0.0.0.0');
  putIpv4(buf, 16, m.yiaddr ?? '0.0.0.0');
  putIpv4(buf, 20, m.siaddr ?? '0.0.0.0');
  putIpv4(buf, 24, m.giaddr ?? '0.0.0.0');
  mac.copy(buf, 28);
  buf.write(m.file ?? '', 108, 127, 'latin1');
  COOKIE.copy(buf, 236);
  let at = OPTIONS_AT;
  for (const [code, value] of m.options) {
    if (value.length > 255) throw new Error(`option ${code}: ${value.length} bytes do not fit one option (255 at most)`);
    buf[at] = code;
    buf[at + 1] = value.length;
    value.copy(buf, at + 2);
    at += 2 + value.length;
  }
  buf[at] = 255;
  return buf;
}

// Reads the options of one area into `out`, stopping at the end option.
function readOptions(buf: Buffer, start: number, end: number, out: Map<number, Buffer[]>): void {
  let at = start;
  while (at < end) {
    const code = buf[at];
    if (code === 255) return;
    if (code === 0) {
      at++;
      continue;
    }
    if (at + 1 >= end) throw new Error(`option ${code} at byte ${at} has no length`);
    const len = buf[at + 1];
    if (at + 2 + len > end) throw new Error(`option ${code} at byte ${at} runs past its area (${len} bytes)`);
    const parts = out.get(code) ?? [];
    parts.push(buf.subarray(at + 2, at + 2 + len));
    out.set(code, parts);
    at += 2 + len;
  }
}

/** Reads a DHCP message; throws a one-line Error when it is not one. */
export function decodeMessage(buf: Buffer): DhcpMessage {
  if (buf.length < OPTIONS_AT) throw new Error(`${buf.length} bytes: shorter than a DHCP header (240)`);
  if (!buf.subarray(236, 240).equals(COOKIE)) throw new Error(`no DHCP magic cookie at byte 236: ${buf.subarray(236, 240).toString('hex')}`);
  const hlen = Math.min(buf[2], 16);
  const parts = new Map<number, Buffer[]>();
  readOptions(buf, OPTIONS_AT, buf.length, parts);
  const overload = parts.get(52)?.[0]?.[0] ?? 0;
  // RFC 2131 §4.1: the file field is read before sname
  if (overload & 1) readOptions(buf, 108, 236, parts);
  if (overload & 2) readOptions(buf, 44, 108, parts);
  return {
    op: buf[0],
    htype: buf[1],
    hlen: buf[2],
    hops: buf[3],
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipv4(buf, 12),
    yiaddr: ipv4(buf, 16),
    siaddr: ipv4(buf, 20),
    giaddr: ipv4(buf, 24),
    chaddr: [...buf.subarray(28, 28 + hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
    sname: overload & 2 ? '' : text(buf, 44, 64),
    file: overload & 1 ? '' : text(buf, 108, 128),
    options: [...parts].map(([code, p]) => [code, Buffer.concat(p)]),
  };
}

/** A crafted packet as the probes and benchmark senders describe it (JSON-friendly: hex strings). */
export interface ProbePacket {
  /** Raw bytes in hex, sent as they are. */
  raw?: string;
  mac?: string;
  xid?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  hops?: number;
  /** Option code -> value in hex (written in ascending code order). */
  options?: Record<string, string>;
}

export function buildPacket(p: ProbePacket): Buffer {
  if (p.raw !== undefined) return Buffer.from(p.raw, 'hex');
  return encodeMessage({
    mac: p.mac ?? '02:00:00:00:00:01',
    xid: p.xid ?? 0x1234,
    flags: p.flags,
    hops: p.hops,
    ciaddr: p.ciaddr,
    giaddr: p.giaddr,
    options: Object.entries(p.options ?? {}).map(([k, v]) => [Number(k), Buffer.from(v, 'hex')]),
  });
}
