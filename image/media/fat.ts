// A FAT16 file system image, laid out as a pure function of the files it
// holds: every file in one contiguous run of clusters, directories sorted
// by name, all timestamps one fixed time, a fixed volume serial. mkfs.fat
// and mtools stamp the current time and a random serial; this does not,
// so two builds give the same bytes. Names are 8.3 (what EFI/BOOT/BOOTX64.EFI
// and a boot loader's few files need); all-lowercase names keep their case
// through the NT lowercase flags, as Linux and GRUB read them.
import { MediaInputError } from './errors.ts';

export interface FatFile {
  /** Slash-separated 8.3 path, e.g. `EFI/BOOT/BOOTX64.EFI`. */
  path: string;
  size: number;
}

export interface FatOptions {
  /** Up to 11 characters. */
  label?: string;
  serial?: number;
  /** Seconds since the epoch for every entry (clamped to FAT's 1980 start). */
  mtime?: number;
  /** Sectors before this file system on its disk (the partition's start), for the BPB. */
  hiddenSectors?: number;
  /** Extra free bytes beyond what the files need. */
  freeBytes?: number;
}

export interface FatLayout {
  /** Size of the whole file system in bytes. */
  size: number;
  /** Everything but file contents (boot sector, FATs, directories), at their offsets. */
  metadata: { offset: number; data: Buffer }[];
  /** Where each input file's bytes go, in input order. */
  fileOffsets: number[];
}

const SECTOR = 512;
const ROOT_ENTRIES = 512;
const MIN_CLUSTERS = 4085;
const MAX_CLUSTERS = 65524;
const ATTR_DIR = 0x10;
const ATTR_ARCHIVE = 0x20;
const ATTR_VOLUME = 0x08;
const LOWER_NAME = 0x08;
const LOWER_EXT = 0x10;
const PART = /^[A-Z0-9_~!#%&()@^-]{1,8}(\.[A-Z0-9_~!#%&()@^-]{1,3})?$/;

interface Dir {
  name: string;
  dirs: Map<string, Dir>;
  files: Map<string, number>;
  cluster: number;
  clusters: number;
}

function shortName(part: string, path: string): { name: Buffer; flags: number } {
  const upper = part.toUpperCase();
  if (!PART.test(upper)) throw new MediaInputError(`${path}: ${JSON.stringify(part)} is not an 8.3 name`);
  const [base, ext = ''] = upper.split('.');
  const [b, e] = part.split('.');
  const caseOf = (s: string | undefined) => (!s || s === s.toUpperCase() ? 0 : s === s.toLowerCase() ? 1 : -1);
  if (caseOf(b) < 0 || caseOf(e) < 0) throw new MediaInputError(`${path}: ${JSON.stringify(part)} mixes upper and lower case, which 8.3 names cannot keep`);
  const flags = (caseOf(b) ? LOWER_NAME : 0) | (caseOf(e) ? LOWER_EXT : 0);
  return { name: Buffer.from(base.padEnd(8) + ext.padEnd(3), 'latin1'), flags };
}

/** FAT's date and time words for a Unix time (UTC). */
export function fatTime(seconds: number): { date: number; time: number } {
  const d = new Date(Math.max(seconds, 315532800) * 1000);
  const year = Math.min(d.getUTCFullYear(), 2107);
  return {
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
  };
}

function entry(name: Buffer, flags: number, attr: number, cluster: number, size: number, stamp: { date: number; time: number }): Buffer {
  const e = Buffer.alloc(32);
  name.copy(e, 0);
  e[11] = attr;
  e[12] = flags;
  e.writeUInt16LE(stamp.time, 14);
  e.writeUInt16LE(stamp.date, 16);
  e.writeUInt16LE(stamp.date, 18);
  e.writeUInt16LE(stamp.time, 22);
  e.writeUInt16LE(stamp.date, 24);
  e.writeUInt16LE(cluster, 26);
  e.writeUInt32LE(size, 28);
  return e;
}

function tree(files: readonly FatFile[]): Dir {
  const root: Dir = { name: '', dirs: new Map(), files: new Map(), cluster: 0, clusters: 0 };
  files.forEach((f, i) => {
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw new MediaInputError(`${f.path}: bad size ${f.size}`);
    const parts = f.path.split('/').filter((p) => p !== '');
    if (parts.length === 0) throw new MediaInputError(`empty path in the FAT file list`);
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      shortName(p, f.path);
      const key = p.toUpperCase();
      if (dir.files.has(key)) throw new MediaInputError(`${f.path}: ${p} is a file`);
      let next = dir.dirs.get(key);
      if (!next) dir.dirs.set(key, (next = { name: p, dirs: new Map(), files: new Map(), cluster: 0, clusters: 0 }));
      dir = next;
    }
    const last = parts[parts.length - 1];
    shortName(last, f.path);
    const key = last.toUpperCase();
    if (dir.files.has(key) || dir.dirs.has(key)) throw new MediaInputError(`${f.path}: listed twice`);
    dir.files.set(key, i);
  });
  return root;
}

function walk(d: Dir, fn: (d: Dir) => void): void {
  fn(d);
  for (const k of [...d.dirs.keys()].sort()) walk(d.dirs.get(k)!, fn);
}

/** Lays out a FAT16 file system holding `files` (sizes only; the caller writes their bytes at fileOffsets). */
export function fatLayout(files: readonly FatFile[], opts: FatOptions = {}): FatLayout {
  const root = tree(files);
  const stamp = fatTime(opts.mtime ?? 0);
  const label = (opts.label ?? 'ZEROBOOT').toUpperCase();
  if (!/^[A-Z0-9 _-]{1,11}$/.test(label)) throw new MediaInputError(`FAT label ${JSON.stringify(label)}: 1 to 11 of A-Z 0-9 space _ -`);
  const dirs: Dir[] = [];
  walk(root, (d) => d !== root && dirs.push(d));
  const entriesOf = (d: Dir) => d.dirs.size + d.files.size + 2;

  let spc = 1;
  let clusters = 0;
  for (;;) {
    const bytes = SECTOR * spc;
    const need = dirs.reduce((n, d) => n + Math.ceil((entriesOf(d) * 32) / bytes), 0) + files.reduce((n, f) => n + Math.ceil(f.size / bytes), 0) + Math.ceil((opts.freeBytes ?? 0) / bytes);
    if (need <= MAX_CLUSTERS) {
      clusters = Math.max(need, MIN_CLUSTERS);
      break;
    }
    if (spc === 64) throw new MediaInputError(`the files need ${need} clusters of 32 KiB; FAT16 holds at most ${MAX_CLUSTERS} (2 GiB)`);
    spc *= 2;
  }
  const clusterBytes = SECTOR * spc;
  const fatSectors = Math.ceil(((clusters + 2) * 2) / SECTOR);
  const rootSectors = (ROOT_ENTRIES * 32) / SECTOR;
  const reserved = 1;
  const dataStart = (reserved + 2 * fatSectors + rootSectors) * SECTOR;
  const totalSectors = reserved + 2 * fatSectors + rootSectors + clusters * spc;
  const fat = Buffer.alloc(fatSectors * SECTOR);
  fat.writeUInt16LE(0xfff8, 0);
  fat.writeUInt16LE(0xffff, 2);
  let next = 2;
  const allocate = (bytes: number): number => {
    const n = Math.ceil(bytes / clusterBytes);
    if (n === 0) return 0;
    const first = next;
    for (let c = first; c < first + n; c++) fat.writeUInt16LE(c === first + n - 1 ? 0xffff : c + 1, c * 2);
    next += n;
    return first;
  };
  const offsetOf = (cluster: number) => dataStart + (cluster - 2) * clusterBytes;

  // Directories first (in tree order), then files in input order.
  for (const d of dirs) {
    d.clusters = Math.ceil((entriesOf(d) * 32) / clusterBytes);
    d.cluster = allocate(d.clusters * clusterBytes);
  }
  const fileClusters = files.map((f) => allocate(f.size));
  const metadata: { offset: number; data: Buffer }[] = [];
  const dirBytes = (d: Dir, parentCluster: number): Buffer => {
    const list: Buffer[] = [];
    if (d === root) list.push(entry(Buffer.from(label.padEnd(11), 'latin1'), 0, ATTR_VOLUME, 0, 0, stamp));
    else list.push(entry(Buffer.from('.'.padEnd(11)), 0, ATTR_DIR, d.cluster, 0, stamp), entry(Buffer.from('..'.padEnd(11)), 0, ATTR_DIR, parentCluster, 0, stamp));
    for (const k of [...d.dirs.keys()].sort()) {
      const sub = d.dirs.get(k)!;
      const { name, flags } = shortName(sub.name, sub.name);
      list.push(entry(name, flags, ATTR_DIR, sub.cluster, 0, stamp));
    }
    for (const k of [...d.files.keys()].sort()) {
      const i = d.files.get(k)!;
      const parts = files[i].path.split('/').filter((p) => p !== '');
      const { name, flags } = shortName(parts[parts.length - 1], files[i].path);
      list.push(entry(name, flags, ATTR_ARCHIVE, fileClusters[i], files[i].size, stamp));
    }
    return Buffer.concat(list);
  };
  const rootDir = dirBytes(root, 0);
  if (rootDir.length > ROOT_ENTRIES * 32) throw new MediaInputError(`too many entries in the FAT root directory (at most ${ROOT_ENTRIES - 1})`);
  const emit = (d: Dir, parentCluster: number) => {
    for (const k of [...d.dirs.keys()].sort()) {
      const sub = d.dirs.get(k)!;
      const data = Buffer.alloc(sub.clusters * clusterBytes);
      dirBytes(sub, d === root ? 0 : parentCluster).copy(data);
      metadata.push({ offset: offsetOf(sub.cluster), data });
      emit(sub, sub.cluster);
    }
  };
  emit(root, 0);

  const boot = Buffer.alloc(SECTOR);
  // jmp to a hlt loop: this file system boots nothing by itself.
  Buffer.from([0xeb, 0x3c, 0x90]).copy(boot, 0);
  boot.write('ZEROBOOT', 3, 'latin1');
  boot.writeUInt16LE(SECTOR, 11);
  boot[13] = spc;
  boot.writeUInt16LE(reserved, 14);
  boot[16] = 2;
  boot.writeUInt16LE(ROOT_ENTRIES, 17);
  boot.writeUInt16LE(totalSectors < 0x10000 ? totalSectors : 0, 19);
  boot[21] = 0xf8;
  boot.writeUInt16LE(fatSectors, 22);
  boot.writeUInt16LE(32, 24);
  boot.writeUInt16LE(64, 26);
  boot.writeUInt32LE(opts.hiddenSectors ?? 0, 28);
  boot.writeUInt32LE(totalSectors < 0x10000 ? 0 : totalSectors, 32);
  boot[36] = 0x80;
  boot[38] = 0x29;
  boot.writeUInt32LE((opts.serial ?? 0x5a0b0070) >>> 0, 39);
  boot.write(label.padEnd(11), 43, 'latin1');
  boot.write('FAT16   ', 54, 'latin1');
  Buffer.from([0xf4, 0xeb, 0xfd]).copy(boot, 0x3e);
  boot.writeUInt16LE(0xaa55, 510);

  const rootArea = Buffer.alloc(rootSectors * SECTOR);
  rootDir.copy(rootArea);
  metadata.unshift(
    { offset: 0, data: boot },
    { offset: reserved * SECTOR, data: fat },
    { offset: (reserved + fatSectors) * SECTOR, data: fat },
    { offset: (reserved + 2 * fatSectors) * SECTOR, data: rootArea },
  );
  return { size: totalSectors * SECTOR, metadata, fileOffsets: fileClusters.map((c, i) => (files[i].size === 0 ? 0 : offsetOf(c))) };
}

/** The whole file system in memory (for small images and tests). */
export function fatImage(files: readonly { path: string; data: Uint8Array }[], opts: FatOptions = {}): Buffer {
  const layout = fatLayout(files.map((f) => ({ path: f.path, size: f.data.length })), opts);
  const out = Buffer.alloc(layout.size);
  for (const m of layout.metadata) m.data.copy(out, m.offset);
  files.forEach((f, i) => out.set(f.data, layout.fileOffsets[i]));
  return out;
}
