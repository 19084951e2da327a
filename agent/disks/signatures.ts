// Pure signature reader over the first and last MiB of a block device: what
// would make writing to it destroy something. It knows partition tables,
// filesystems, RAID and volume-manager metadata and encryption headers by
// their magic numbers at fixed offsets (the offsets libblkid probes). Any
// other non-zero byte in the probed regions still counts: a disk is blank
// only when both regions are all zeroes.

/** How many bytes at each end of the device the prober reads. */
export const PROBE_BYTES = 1024 * 1024;

export type FindingKind = 'partition table' | 'filesystem' | 'raid' | 'volume' | 'crypto' | 'data';

export interface Finding {
  kind: FindingKind;
  /** gpt, mbr, ext4, xfs, btrfs, lvm2, mdraid-1.2, zfs, swap, ntfs, vfat, iso9660, luks, unknown */
  name: string;
  /** One line for the report: `gpt partition table`, `ext4 signature`, ... */
  reason: string;
  label?: string;
}

export interface ProbeRegions {
  /** The first min(size, PROBE_BYTES) bytes. */
  head: Buffer;
  /** The last min(size, PROBE_BYTES) bytes. */
  tail: Buffer;
  /** Device size in bytes. */
  size: number;
}

const BTRFS_SB = 0x10000;
const MD_MAGIC = 0xa92b4efc;
const ZFS_UB_MAGIC = 0x00bab10c;

function at(b: Buffer, offset: number, magic: string | Buffer): boolean {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic;
  return offset >= 0 && offset + m.length <= b.length && b.subarray(offset, offset + m.length).equals(m);
}

function cstr(b: Buffer, offset: number, max: number): string | undefined {
  if (offset + max > b.length) return undefined;
  const s = b.subarray(offset, offset + max);
  const end = s.indexOf(0);
  const v = s.subarray(0, end < 0 ? max : end).toString('utf8');
  return v === '' ? undefined : v;
}

/** Reads a byte at an absolute device offset from whichever region holds it. */
function region(r: ProbeRegions, absolute: number, length: number): Buffer | undefined {
  if (absolute < 0 || absolute + length > r.size) return undefined;
  if (absolute + length <= r.head.length) return r.head.subarray(absolute, absolute + length);
  const tailStart = r.size - r.tail.length;
  if (absolute >= tailStart) return r.tail.subarray(absolute - tailStart, absolute - tailStart + length);
  return undefined;
}

function ext(h: Buffer): Finding | undefined {
  const sb = 1024;
  if (h.length < sb + 0x80 || h.readUInt16LE(sb + 0x38) !== 0xef53) return undefined;
  const compat = h.readUInt32LE(sb + 0x5c);
  const incompat = h.readUInt32LE(sb + 0x60);
  // 0x8 = journal device; 0x40 extents, 0x80 64bit, 0x200 flex_bg are ext4-only; 0x4 = has_journal.
  const name = incompat & 0x8 ? 'jbd' : incompat & (0x40 | 0x80 | 0x200) ? 'ext4' : compat & 0x4 ? 'ext3' : 'ext2';
  const f: Finding = { kind: 'filesystem', name, reason: `${name} signature` };
  const label = cstr(h, sb + 0x78, 16);
  if (label) f.label = label;
  return f;
}

function btrfs(h: Buffer): Finding | undefined {
  if (!at(h, BTRFS_SB + 0x40, '_BHRfS_M')) return undefined;
  const f: Finding = { kind: 'filesystem', name: 'btrfs', reason: 'btrfs signature' };
  const label = cstr(h, BTRFS_SB + 0x12b, 256);
  if (label) f.label = label;
  return f;
}

function mdraid(r: ProbeRegions): Finding | undefined {
  const check = (offset: number, version: string): Finding | undefined => {
    const b = region(r, offset, 4);
    return b && b.readUInt32LE(0) === MD_MAGIC ? { kind: 'raid', name: `mdraid-${version}`, reason: `linux raid (md ${version}) signature` } : undefined;
  };
  const sectors = Math.floor(r.size / 512);
  return (
    check(0, '1.1') ??
    check(4096, '1.2') ??
    // 1.0: 8 KiB before the end, rounded down to 4 KiB; 0.90: 64 KiB before the end, rounded down to 64 KiB.
    check(((sectors - 16) & ~7) * 512, '1.0') ??
    check((Math.floor(r.size / 65536) - 1) * 65536, '0.90')
  );
}

function zfs(r: ProbeRegions): Finding | undefined {
  // Four vdev labels of 256 KiB (two at each end); each holds its uberblock ring from 128 KiB on.
  const labels = [0, 256 * 1024, r.size - 512 * 1024, r.size - 256 * 1024];
  for (const label of labels) {
    for (let ub = label + 128 * 1024; ub < label + 256 * 1024; ub += 1024) {
      const b = region(r, ub, 8);
      if (!b) break;
      if (b.readBigUInt64LE(0) === BigInt(ZFS_UB_MAGIC) || b.readBigUInt64BE(0) === BigInt(ZFS_UB_MAGIC)) return { kind: 'volume', name: 'zfs', reason: 'zfs member signature' };
    }
  }
  return undefined;
}

function swap(h: Buffer): Finding | undefined {
  for (const page of [4096, 8192, 16384, 65536]) {
    if (at(h, page - 10, 'SWAPSPACE2') || at(h, page - 10, 'SWAP-SPACE')) return { kind: 'filesystem', name: 'swap', reason: 'swap signature' };
  }
  return undefined;
}

function vfat(h: Buffer): Finding | undefined {
  if (h.length < 512 || (h[0] !== 0xeb && h[0] !== 0xe9)) return undefined;
  if (at(h, 82, 'FAT32   ') || at(h, 54, 'FAT12   ') || at(h, 54, 'FAT16   ') || at(h, 54, 'FAT     ')) return { kind: 'filesystem', name: 'vfat', reason: 'vfat signature' };
  return undefined;
}

function lvm(h: Buffer): Finding | undefined {
  // The label sits in one of the first four sectors; its type is at +24.
  for (let s = 0; s < 4; s++) if (at(h, s * 512, 'LABELONE') && at(h, s * 512 + 24, 'LVM2 001')) return { kind: 'volume', name: 'lvm2', reason: 'lvm2 physical volume signature' };
  return undefined;
}

function mbr(h: Buffer): Finding | undefined {
  if (h.length < 512 || h[510] !== 0x55 || h[511] !== 0xaa) return undefined;
  const types: number[] = [];
  for (let i = 0; i < 4; i++) types.push(h[446 + i * 16 + 4]);
  if (types.every((t) => t === 0)) return undefined;
  // A protective MBR (type 0xee) stands in front of a GPT; report the GPT itself.
  if (types.includes(0xee)) return undefined;
  return { kind: 'partition table', name: 'mbr', reason: 'mbr partition table' };
}

function gpt(r: ProbeRegions): Finding | undefined {
  for (const sector of [512, 4096]) {
    if (at(r.head, sector, 'EFI PART')) return { kind: 'partition table', name: 'gpt', reason: 'gpt partition table' };
  }
  // A primary header wiped but its backup (the last sector) still there.
  const backup = region(r, r.size - 512, 8);
  if (backup && backup.equals(Buffer.from('EFI PART'))) return { kind: 'partition table', name: 'gpt', reason: 'gpt partition table (backup header at the end)' };
  return undefined;
}

/**
 * Every structure recognised in the probed regions, most telling first;
 * `unknown` data when something non-zero is there that none matches.
 */
export function probeSignatures(r: ProbeRegions): Finding[] {
  const h = r.head;
  const found: Finding[] = [];
  const add = (f: Finding | undefined) => f && found.push(f);
  add(gpt(r));
  // A FAT or NTFS boot sector also ends in 55 AA: ask the filesystems first.
  const ntfs = at(h, 3, 'NTFS    ') ? ({ kind: 'filesystem', name: 'ntfs', reason: 'ntfs signature' } as const) : undefined;
  const fat = vfat(h);
  add(ntfs);
  add(fat);
  if (!ntfs && !fat) add(mbr(h));
  if (at(h, 0, Buffer.from('LUKS\xba\xbe', 'latin1'))) add({ kind: 'crypto', name: 'luks', reason: 'luks encryption header' });
  add(lvm(h));
  add(mdraid(r));
  add(ext(h));
  if (at(h, 0, 'XFSB')) add({ kind: 'filesystem', name: 'xfs', reason: 'xfs signature' });
  add(btrfs(h));
  add(zfs(r));
  add(swap(h));
  if (at(h, 0x8001, 'CD001')) add({ kind: 'filesystem', name: 'iso9660', reason: 'iso9660 signature' });
  if (found.length === 0 && !isZero(r)) {
    const offset = firstNonZero(r);
    found.push({ kind: 'data', name: 'unknown', reason: `unrecognised data (first non-zero byte at ${offset})` });
  }
  return found;
}

const ZEROS = Buffer.alloc(8192);

function isAllZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += ZEROS.length) {
    const chunk = b.subarray(i, i + ZEROS.length);
    if (!chunk.equals(ZEROS.subarray(0, chunk.length))) return false;
  }
  return true;
}

/** Both probed regions hold only zero bytes. */
export function isZero(r: ProbeRegions): boolean {
  return isAllZero(r.head) && isAllZero(r.tail);
}

function firstNonZero(r: ProbeRegions): number {
  const i = r.head.findIndex((x) => x !== 0);
  if (i >= 0) return i;
  const j = r.tail.findIndex((x) => x !== 0);
  return r.size - r.tail.length + j;
}
