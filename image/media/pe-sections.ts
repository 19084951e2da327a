// Appends named sections to a PE32+ image: how a unified kernel image is
// made from systemd's EFI stub. Pure over Buffers. The new sections go after
// the stub's last one, each at a page-aligned virtual address and a
// FileAlignment-aligned file offset, their headers into the free space the
// stub leaves after its section table (SizeOfHeaders); SizeOfImage,
// SizeOfInitializedData and the checksum are updated. The stub's
// TimeDateStamp is kept, so the result depends only on the inputs. A
// signature on the stub would no longer match, so a signed stub is refused.
import { PeFormatError, peSignature } from '../pe-signature.ts';

export interface NewSection {
  /** At most 8 bytes, e.g. `.linux`. */
  name: string;
  data: Uint8Array;
}

export interface PeSectionHeader {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  rawSize: number;
  rawOffset: number;
  characteristics: number;
}

const SECTION_HEADER = 40;
// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
const READ_ONLY_DATA = 0x40000040;
const PAGE = 0x1000;

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

interface Layout {
  pe: number;
  opt: number;
  table: number;
  count: number;
}

function layout(buf: Buffer): Layout {
  const info = peSignature(buf);
  if (info.format !== 'PE32+') throw new PeFormatError(`expected a PE32+ (64-bit) EFI program, got ${info.format}`);
  const pe = buf.readUInt32LE(0x3c);
  const opt = pe + 24;
  const table = opt + buf.readUInt16LE(pe + 20);
  return { pe, opt, table, count: buf.readUInt16LE(pe + 6) };
}

/** The section table of a PE32+ image. */
export function peSections(data: Uint8Array): PeSectionHeader[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const { table, count } = layout(buf);
  const out: PeSectionHeader[] = [];
  for (let i = 0; i < count; i++) {
    const h = table + i * SECTION_HEADER;
    if (h + SECTION_HEADER > buf.length) throw new PeFormatError(`section header ${i} lies past the end of the file`);
    out.push({
      name: buf.toString('latin1', h, h + 8).replace(/\0+$/, ''),
      virtualSize: buf.readUInt32LE(h + 8),
      virtualAddress: buf.readUInt32LE(h + 12),
      rawSize: buf.readUInt32LE(h + 16),
      rawOffset: buf.readUInt32LE(h + 20),
      characteristics: buf.readUInt32LE(h + 36),
    });
  }
  return out;
}

/** The bytes of a named section (its virtual size; raw padding dropped), or undefined. */
export function peSectionData(data: Uint8Array, name: string): Buffer | undefined {
  const s = peSections(data).find((x) => x.name === name);
  if (!s) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return buf.subarray(s.rawOffset, s.rawOffset + Math.min(s.virtualSize, s.rawSize));
}

/** The PE checksum (as IMAGEHLP's CheckSumMappedFile): 16-bit one's-complement-style sum of the file, with the checksum field as zero, plus the length. */
export function peChecksum(buf: Buffer, checksumOffset: number): number {
  let sum = 0;
  const even = buf.length & ~1;
  for (let i = 0; i < even; i += 2) {
    if (i === checksumOffset || i === checksumOffset + 2) continue;
    sum += buf.readUInt16LE(i);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (buf.length & 1) {
    sum += buf[buf.length - 1];
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + buf.length) >>> 0;
}

/** A copy of `stub` with `sections` appended, in order. */
export function addPeSections(stub: Uint8Array, sections: readonly NewSection[]): Buffer {
  const src = Buffer.from(stub.buffer, stub.byteOffset, stub.byteLength);
  if (peSignature(src).signed) throw new PeFormatError('the stub carries an Authenticode signature, which appending sections would break; use an unsigned stub and sign the result');
  const { pe, opt, table, count } = layout(src);
  const existing = peSections(src);
  const fileAlign = src.readUInt32LE(opt + 36);
  const sectAlign = src.readUInt32LE(opt + 32);
  const sizeOfHeaders = src.readUInt32LE(opt + 60);
  const firstRaw = Math.min(...existing.filter((s) => s.rawSize > 0).map((s) => s.rawOffset), sizeOfHeaders);
  const tableEnd = table + (count + sections.length) * SECTION_HEADER;
  if (tableEnd > firstRaw) throw new PeFormatError(`no room for ${sections.length} more section headers: the table would end at ${tableEnd}, the first section starts at ${firstRaw}`);
  const names = new Set(existing.map((s) => s.name));
  for (const s of sections) {
    if (Buffer.byteLength(s.name, 'latin1') > 8 || !/^[\x21-\x7e]+$/.test(s.name)) throw new PeFormatError(`section name ${JSON.stringify(s.name)} must be 1 to 8 printable characters`);
    if (names.has(s.name)) throw new PeFormatError(`the stub already has a ${s.name} section`);
    names.add(s.name);
  }

  const vEnd = Math.max(...existing.map((s) => s.virtualAddress + s.virtualSize));
  const rawEnd = Math.max(src.length, ...existing.map((s) => s.rawOffset + s.rawSize));
  let va = align(vEnd, Math.max(PAGE, sectAlign));
  let raw = align(rawEnd, fileAlign);
  const placed = sections.map((s) => {
    const p = { ...s, va, raw, rawSize: align(s.data.length, fileAlign) };
    va = align(va + s.data.length, Math.max(PAGE, sectAlign));
    raw += p.rawSize;
    return p;
  });
  const out = Buffer.alloc(raw);
  src.copy(out, 0, 0, Math.min(src.length, rawEnd));
  let initialized = out.readUInt32LE(opt + 8);
  placed.forEach((p, i) => {
    const h = table + (count + i) * SECTION_HEADER;
    out.fill(0, h, h + SECTION_HEADER);
    out.write(p.name, h, 'latin1');
    out.writeUInt32LE(p.data.length, h + 8);
    out.writeUInt32LE(p.va, h + 12);
    out.writeUInt32LE(p.rawSize, h + 16);
    out.writeUInt32LE(p.raw, h + 20);
    out.writeUInt32LE(READ_ONLY_DATA, h + 36);
    out.set(p.data, p.raw);
    initialized += p.rawSize;
  });
  out.writeUInt16LE(count + sections.length, pe + 6);
  out.writeUInt32LE(initialized >>> 0, opt + 8);
  out.writeUInt32LE(align(va, sectAlign), opt + 56);
  out.writeUInt32LE(0, opt + 64);
  out.writeUInt32LE(peChecksum(out, opt + 64), opt + 64);
  return out;
}
