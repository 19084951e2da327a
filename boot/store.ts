// The image store the TFTP and HTTP servers read from: a set of mounts that
// map virtual paths onto directories or in-memory files. Paths are resolved
// here once, so neither server can be tricked into leaving its roots.
import { open, stat, realpath } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';

export class StorePathError extends Error {
  readonly code = 'EPATH';
}
export class StoreNotFoundError extends Error {
  readonly code = 'ENOENT';
}

export interface StoreEntry {
  /** Normalised virtual path, no leading slash. */
  path: string;
  size: number;
  mtime: Date;
  /** Strong validator: changes whenever content may have changed. */
  etag: string;
  /** Random access for TFTP (block reads). */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Reads into the caller's buffer at a file position; resolves the bytes
   * read (0 at the end). HTTP cycles two buffers through it: a fresh buffer
   * per chunk costs about 2.5x the CPU per byte (page faults, garbage).
   */
  readInto(buf: Buffer, position: number): Promise<number>;
  /** The open file's descriptor, for sendfile(2); absent when the bytes are not a file (in memory). Valid until close(). */
  fd?(): Promise<number>;
  close(): Promise<void>;
}

export interface ImageStore {
  /** Opens a virtual path; throws StorePathError or StoreNotFoundError. */
  open(virtualPath: string): Promise<StoreEntry>;
}

export type Mount =
  | {
      prefix: string;
      dir: string;
      /**
       * Follow the directory's own file symlinks wherever they lead (Debian's
       * /usr/lib/ipxe/ipxe.efi points into /boot). For directories the
       * operator vouches for, such as the iPXE one; directories on the way
       * must still resolve inside the root, so a link to a directory cannot
       * open up the file system.
       */
      followSymlinks?: boolean;
    }
  | { prefix: string; files: Record<string, Buffer> };

/**
 * Normalises a client-supplied path: back-slashes as separators (Windows
 * TFTP clients), no NUL, no "..", no absolute escape. Returns the path
 * without leading slash, or throws StorePathError.
 */
export function cleanPath(input: string): string {
  if (input.includes('\0')) throw new StorePathError('path contains NUL');
  const parts = input.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new StorePathError(`path escapes the store: ${input}`);
  return parts.join('/');
}

export class MountedStore implements ImageStore {
  private readonly mounts: Mount[];

  constructor(mounts: Mount[]) {
    // Longest prefix first so "ipxe/x" beats "" for the same name.
    this.mounts = mounts
      .map((m) => ({ ...m, prefix: cleanPath(m.prefix) }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  async open(virtualPath: string): Promise<StoreEntry> {
    const clean = cleanPath(virtualPath);
    for (const m of this.mounts) {
      let rest: string;
      if (m.prefix === '') rest = clean;
      else if (clean === m.prefix) rest = '';
      else if (clean.startsWith(m.prefix + '/')) rest = clean.slice(m.prefix.length + 1);
      else continue;
      if ('files' in m) {
        const data = m.files[rest];
        if (data) return memoryEntry(clean, data);
        continue;
      }
      const entry = await openInDir(m.dir, rest, clean, m.followSymlinks === true);
      if (entry) return entry;
    }
    throw new StoreNotFoundError(`not found: ${clean}`);
  }
}

export function memoryEntry(p: string, data: Buffer): StoreEntry {
  const etag = `"${createHash('sha256').update(data).digest('hex').slice(0, 32)}"`;
  const mtime = new Date(0);
  return {
    path: p,
    size: data.length,
    mtime,
    etag,
    read: async (offset, length) => data.subarray(offset, Math.min(data.length, offset + length)),
    readInto: async (buf, position) => (position >= data.length ? 0 : data.copy(buf, 0, position, Math.min(data.length, position + buf.length))),
    close: async () => {},
  };
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + path.sep);
}

async function openInDir(dir: string, rest: string, virtualPath: string, followSymlinks: boolean): Promise<StoreEntry | undefined> {
  if (rest === '') return undefined;
  const root = await realpath(dir).catch(() => undefined);
  if (!root) return undefined;
  const full = await realpath(path.join(root, rest)).catch(() => undefined);
  if (!full) return undefined;
  // A symlink inside the root must not lead outside it, unless the mount
  // trusts its files' links; its directories must stay inside either way.
  if (!inside(root, full)) {
    const parent = followSymlinks ? await realpath(path.dirname(path.join(root, rest))).catch(() => undefined) : undefined;
    if (parent === undefined || !inside(root, parent)) throw new StorePathError(`path escapes the store: ${virtualPath}`);
  }
  const st = await stat(full);
  if (!st.isFile()) return undefined;
  let fh: FileHandle | undefined;
  const etag = `"${st.ino.toString(16)}-${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  return fileEntry(virtualPath, st, etag, async () => (fh ??= await open(full, 'r')), async () => {
    if (fh) await fh.close();
    fh = undefined;
  });
}

/** A store entry reading a file of `st`'s size through `handle()` (opened on first use, or already open); `close` lets it go. */
export function fileEntry(virtualPath: string, st: { size: number; mtime: Date }, etag: string, handle: () => Promise<FileHandle>, close: () => Promise<void>): StoreEntry {
  return {
    path: virtualPath,
    size: st.size,
    mtime: st.mtime,
    etag,
    async read(offset, length) {
      const h = await handle();
      const buf = Buffer.allocUnsafe(Math.max(0, Math.min(length, st.size - offset)));
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await h.read(buf, done, buf.length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === buf.length ? buf : buf.subarray(0, done);
    },
    async readInto(buf, position) {
      const h = await handle();
      const want = Math.max(0, Math.min(buf.length, st.size - position));
      if (want === 0) return 0;
      return (await h.read(buf, 0, want, position)).bytesRead;
    },
    fd: async () => (await handle()).fd,
    close,
  };
}
