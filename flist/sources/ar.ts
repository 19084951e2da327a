// The ar archive format (a .deb is one: debian-binary, control.tar.*,
// data.tar.*). A pure codec over Buffers: the 8-byte global magic, then per
// member a 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8 octal,
// size 10, "`\n"), the data, and one pad byte after odd sizes. GNU/SysV names
// end in "/"; BSD names "#1/<len>" are stored at the start of the data.
import { FlistError } from '../errors.ts';
import { AR_MAGIC } from './sniff.ts';

export const AR_HEADER_SIZE = 60;

export class ArFormatError extends FlistError {
  override name = 'ArFormatError';
}

export interface ArMember {
  name: string;
  mtime: number;
  uid: number;
  gid: number;
  mode: number;
  /** Bytes of the member's data (without a BSD long name). */
  size: number;
  /** Bytes between the header's end and the data: a BSD long name's length, else 0. */
  nameLength: number;
}

function field(header: Buffer, start: number, length: number, what: string, radix: number): number {
  const text = header.subarray(start, start + length).toString('latin1').trim();
  if (text === '') return 0;
  const re = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(text)) throw new ArFormatError(`ar member header: ${what} ${JSON.stringify(text)} is not a number`);
  return parseInt(text, radix);
}

/** Parses one member header (60 bytes). A BSD long name is returned as "#1/<len>": read it with bsdName(). */
export function parseArHeader(header: Buffer): ArMember {
  if (header.length < AR_HEADER_SIZE) throw new ArFormatError(`ar member header: ${header.length} bytes, expected ${AR_HEADER_SIZE} (truncated archive)`);
  if (header[58] !== 0x60 || header[59] !== 0x0a) throw new ArFormatError('ar member header: no "`\\n" terminator (damaged archive)');
  const raw = header.subarray(0, 16).toString('latin1').trimEnd();
  const size = field(header, 48, 10, 'size', 10);
  const bsd = /^#1\/(\d+)$/.exec(raw);
  const nameLength = bsd ? Number(bsd[1]) : 0;
  if (nameLength > size) throw new ArFormatError(`ar member header: name length ${nameLength} exceeds the member size ${size}`);
  return {
    name: bsd ? raw : raw !== '/' && raw !== '//' && raw.endsWith('/') ? raw.slice(0, -1) : raw,
    mtime: field(header, 16, 12, 'mtime', 10),
    uid: field(header, 28, 6, 'uid', 10),
    gid: field(header, 34, 6, 'gid', 10),
    mode: field(header, 40, 8, 'mode', 8),
    size: size - nameLength,
    nameLength,
  };
}

/** A BSD long name, from the bytes right after the header. */
export function bsdName(afterHeader: Buffer, member: ArMember): string {
  return afterHeader.subarray(0, member.nameLength).toString('utf8').replace(/\0+$/, '');
}

/** The offset of the next member's header, from this one's header offset. */
export function nextMemberOffset(headerOffset: number, member: ArMember): number {
  const stored = member.size + member.nameLength;
  return headerOffset + AR_HEADER_SIZE + stored + (stored & 1);
}

/** Encodes one member (GNU style name); for building archives in tests and tools. */
export function encodeArMember(name: string, data: Buffer, opts: { mtime?: number; uid?: number; gid?: number; mode?: number } = {}): Buffer {
  if (Buffer.byteLength(name) > 15 || name.includes('/')) throw new ArFormatError(`ar member name ${JSON.stringify(name)}: at most 15 bytes, no "/"`);
  const pad = (v: string, n: number) => v.padEnd(n, ' ');
  const header = Buffer.from(
    pad(`${name}/`, 16) + pad(String(opts.mtime ?? 0), 12) + pad(String(opts.uid ?? 0), 6) + pad(String(opts.gid ?? 0), 6) + pad((opts.mode ?? 0o100644).toString(8), 8) + pad(String(data.length), 10) + '`\n',
    'latin1',
  );
  return Buffer.concat([header, data, data.length & 1 ? Buffer.from('\n') : Buffer.alloc(0)]);
}

/** Members of a whole archive held in memory: name, and data as a view. */
export function parseAr(archive: Buffer): { member: ArMember; data: Buffer }[] {
  if (!archive.subarray(0, AR_MAGIC.length).equals(AR_MAGIC)) throw new ArFormatError('not an ar archive (no "!<arch>" magic)');
  const out: { member: ArMember; data: Buffer }[] = [];
  for (let at = AR_MAGIC.length; at < archive.length; ) {
    const member = parseArHeader(archive.subarray(at, at + AR_HEADER_SIZE));
    const start = at + AR_HEADER_SIZE;
    if (start + member.nameLength + member.size > archive.length) throw new ArFormatError(`ar member ${JSON.stringify(member.name)}: ${member.size} bytes, the archive ends before (truncated archive)`);
    if (member.nameLength > 0) member.name = bsdName(archive.subarray(start), member);
    out.push({ member, data: archive.subarray(start + member.nameLength, start + member.nameLength + member.size) });
    at = nextMemberOffset(at, member);
  }
  return out;
}
