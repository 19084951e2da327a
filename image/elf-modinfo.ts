// Reads the `.modinfo` section of a Linux kernel module (an ELF relocatable
// object): NUL-separated `key=value` strings such as name=, depends=,
// alias= and vermagic=. Pure over a Buffer; decompressing .ko.xz/.ko.zst/
// .ko.gz is the caller's job (see modules.ts).

export class ElfError extends Error {}

export interface ModInfo {
  /** Module name as the kernel knows it (underscores), from `name=`; empty if the section has none. */
  name: string;
  /** Modules that must be loaded first (`depends=`, comma separated). */
  depends: string[];
  aliases: string[];
  vermagic: string;
  /** `softdep=` words: modules the module would like loaded before (`pre:`) or after (`post:`). */
  softdep: { pre: string[]; post: string[] };
  /** Every key with all its values, in file order. */
  fields: Record<string, string[]>;
}

const ELF_MAGIC = 0x7f454c46;
const ELFCLASS64 = 2;
const SHN_XINDEX = 0xffff;
const SHDR_SIZE = 64;

interface Reader {
  u16(off: number): number;
  u32(off: number): number;
  u64(off: number): number;
}

function reader(buf: Buffer, littleEndian: boolean): Reader {
  const check = (off: number, len: number) => {
    if (off < 0 || off + len > buf.length) throw new ElfError(`ELF file truncated: needs ${off + len} bytes, has ${buf.length}`);
  };
  return {
    u16(off) {
      check(off, 2);
      return littleEndian ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
    },
    u32(off) {
      check(off, 4);
      return littleEndian ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
    },
    u64(off) {
      check(off, 8);
      const v = littleEndian ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`ELF offset ${v} is out of range`);
      return Number(v);
    },
  };
}

/** The bytes of the named section of an ELF64 file, or undefined when it has none. */
export function elfSection(buf: Buffer, wanted: string): Buffer | undefined {
  if (buf.length < 64 || buf.readUInt32BE(0) !== ELF_MAGIC) throw new ElfError('not an ELF file (bad magic)');
  if (buf[4] !== ELFCLASS64) throw new ElfError(`only 64-bit ELF is supported (EI_CLASS ${buf[4]})`);
  if (buf[5] !== 1 && buf[5] !== 2) throw new ElfError(`unknown ELF byte order ${buf[5]}`);
  const r = reader(buf, buf[5] === 1);
  const shoff = r.u64(0x28);
  const shentsize = r.u16(0x3a);
  let shnum = r.u16(0x3c);
  let shstrndx = r.u16(0x3e);
  if (shoff === 0) return undefined;
  if (shentsize < SHDR_SIZE) throw new ElfError(`section header size ${shentsize} is too small`);
  // Files with many sections keep the real count and string-table index in section 0.
  if (shnum === 0) shnum = r.u64(shoff + 0x20);
  if (shstrndx === SHN_XINDEX) shstrndx = r.u32(shoff + 0x28);
  if (shnum > 1_000_000) throw new ElfError(`implausible section count ${shnum}`);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return { name: r.u32(at), offset: r.u64(at + 0x18), size: r.u64(at + 0x20), type: r.u32(at + 4) };
  };
  if (shstrndx >= shnum) throw new ElfError(`section name table index ${shstrndx} is past ${shnum} sections`);
  const strtab = section(shstrndx);
  if (strtab.offset + strtab.size > buf.length) throw new ElfError('section name table lies past the end of the file');
  const names = buf.subarray(strtab.offset, strtab.offset + strtab.size);
  const wantedBytes = Buffer.from(wanted + '\0');
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.name + wantedBytes.length > names.length) continue;
    if (!names.subarray(s.name, s.name + wantedBytes.length).equals(wantedBytes)) continue;
    const SHT_NOBITS = 8;
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    if (s.offset + s.size > buf.length) throw new ElfError(`section ${wanted} lies past the end of the file`);
    return buf.subarray(s.offset, s.offset + s.size);
  }
  return undefined;
}

function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Parses a module's `.modinfo`; throws ElfError when the file is not an ELF64 object or has no `.modinfo`. */
export function parseModinfo(buf: Buffer): ModInfo {
  const section = elfSection(buf, '.modinfo');
  if (section === undefined) throw new ElfError('ELF file has no .modinfo section (not a kernel module?)');
  const fields: Record<string, string[]> = {};
  for (const raw of section.toString('latin1').split('\0')) {
    if (raw === '') continue; // alignment padding between strings
    const eq = raw.indexOf('=');
    if (eq <= 0) continue;
    (fields[raw.slice(0, eq)] ??= []).push(raw.slice(eq + 1));
  }
  const softdep = { pre: [] as string[], post: [] as string[] };
  for (const value of fields.softdep ?? []) {
    let into: string[] | undefined;
    for (const word of value.split(/\s+/).filter(Boolean)) {
      if (word === 'pre:') into = softdep.pre;
      else if (word === 'post:') into = softdep.post;
      else into?.push(word);
    }
  }
  return {
    name: fields.name?.[0] ?? '',
    depends: list(fields.depends?.[0]),
    aliases: fields.alias ?? [],
    vermagic: fields.vermagic?.[0] ?? '',
    softdep,
    fields,
  };
}
