// cpio "newc" (SVR4 without CRC) writer: the archive format the Linux kernel
// unpacks as an initramfs. Output depends only on the entries given: they
// are sorted by path, parents are added when missing, owners are 0:0, every
// mtime is the same fixed value and inode numbers count up in that order, so
// the same files always give the same bytes.

export class CpioError extends Error {}

interface Common {
  /** Path inside the archive, relative ("bin/busybox"); a leading "/" or "./" is dropped. */
  path: string;
  /** Permission bits (the file type is added from `type`). */
  mode?: number;
}
export type CpioEntry =
  | (Common & { type: 'dir' })
  | (Common & { type: 'file'; data: Uint8Array })
  | (Common & { type: 'symlink'; target: string })
  | (Common & { type: 'char' | 'block'; major: number; minor: number });

export interface CpioOptions {
  /** Seconds since the epoch stamped on every entry (SOURCE_DATE_EPOCH); default 0. */
  mtime?: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const MAX_FIELD = 0xffffffff;
const TRAILER = 'TRAILER!!!';

const DEFAULT_MODE: Record<CpioEntry['type'], number> = { dir: 0o755, file: 0o644, symlink: 0o777, char: 0o600, block: 0o600 };
const TYPE_BITS: Record<CpioEntry['type'], number> = { dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK };

/** Normalises an archive path: no leading "/" or "./", no empty, "." or ".." segments. */
export function cpioPath(path: string): string {
  const segments = path.replace(/^(\.?\/)+/, '').split('/');
  if (path.includes('\0')) throw new CpioError(`path ${JSON.stringify(path)} contains a NUL byte`);
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw new CpioError(`path ${JSON.stringify(path)} must be a plain relative path (no empty, "." or ".." parts)`);
  return segments.join('/');
}

function hex8(n: number, what: string): string {
  if (!Number.isInteger(n) || n < 0 || n > MAX_FIELD) throw new CpioError(`${what} ${n} does not fit a cpio newc field`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Entries with normalised paths, missing parent directories added, sorted by byte order (a parent sorts before its children). */
export function normaliseEntries(entries: readonly CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = cpioPath(e.path);
    if (byPath.has(path)) throw new CpioError(`path ${JSON.stringify(path)} appears twice`);
    byPath.set(path, { ...e, path });
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = byPath.get(parent);
      if (!existing) byPath.set(parent, { type: 'dir', path: parent });
      else if (existing.type !== 'dir') throw new CpioError(`${JSON.stringify(parent)} is a ${existing.type} but ${JSON.stringify(path)} is inside it`);
    }
  }
  return [...byPath.values()].sort((a, b) => compareBytes(a.path, b.path));
}

function header(fields: { ino: number; mode: number; nlink: number; mtime: number; size: number; rdevmajor: number; rdevminor: number; namesize: number }): string {
  return (
    '070701' +
    hex8(fields.ino, 'inode') +
    hex8(fields.mode, 'mode') +
    hex8(0, 'uid') +
    hex8(0, 'gid') +
    hex8(fields.nlink, 'nlink') +
    hex8(fields.mtime, 'mtime') +
    hex8(fields.size, 'size') +
    hex8(0, 'devmajor') +
    hex8(0, 'devminor') +
    hex8(fields.rdevmajor, 'rdevmajor') +
    hex8(fields.rdevminor, 'rdevminor') +
    hex8(fields.namesize, 'name size') +
    hex8(0, 'check')
  );
}

function record(parts: Buffer[], name: string, fields: Omit<Parameters<typeof header>[0], 'namesize' | 'size'>, data: Uint8Array): void {
  const nameBytes = Buffer.from(name + '\0');
  const head = Buffer.from(header({ ...fields, size: data.length, namesize: nameBytes.length }), 'ascii');
  parts.push(head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)));
  if (data.length > 0) parts.push(Buffer.from(data.buffer, data.byteOffset, data.length), Buffer.alloc(pad4(data.length)));
}

/** The archive: every entry, then the TRAILER!!! record. Not padded to a block size (the kernel does not need it). */
export function writeCpio(entries: readonly CpioEntry[], options: CpioOptions = {}): Buffer {
  const mtime = options.mtime ?? 0;
  hex8(mtime, 'mtime');
  const parts: Buffer[] = [];
  let ino = 0;
  for (const e of normaliseEntries(entries)) {
    const perm = e.mode ?? DEFAULT_MODE[e.type];
    if (!Number.isInteger(perm) || perm < 0 || perm > 0o7777) throw new CpioError(`mode ${perm} of ${e.path} is not a permission mask`);
    const mode = TYPE_BITS[e.type] | perm;
    ino += 1;
    let data: Uint8Array = Buffer.alloc(0);
    let rdevmajor = 0;
    let rdevminor = 0;
    if (e.type === 'file') data = e.data;
    else if (e.type === 'symlink') {
      if (e.target === '' || e.target.includes('\0')) throw new CpioError(`symlink ${e.path} needs a target without NUL bytes`);
      data = Buffer.from(e.target);
    } else if (e.type === 'char' || e.type === 'block') {
      rdevmajor = e.major;
      rdevminor = e.minor;
    }
    record(parts, e.path, { ino, mode, nlink: e.type === 'dir' ? 2 : 1, mtime, rdevmajor, rdevminor }, data);
  }
  record(parts, TRAILER, { ino: 0, mode: 0, nlink: 1, mtime: 0, rdevmajor: 0, rdevminor: 0 }, Buffer.alloc(0));
  return Buffer.concat(parts);
}
