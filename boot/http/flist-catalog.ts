// The folder of .fl files the server offers: which names may be asked for
// (only files directly in the folder, ending .fl), the listing with each
// file's sha256, and opening one for download. A file is hashed once per
// identity (inode, size, mtime), not per request.
import { createHash } from 'node:crypto';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { OpenFileCache } from '../open-file-cache.ts';
import { MountedStore } from '../store.ts';
import type { StoreEntry } from '../store.ts';

export interface FlistInfo {
  name: string;
  size: number;
  sha256: string;
  /** Seconds since the epoch. */
  mtime: number;
}

/** What a decoded name from a URL is: a .fl that may be served, a name refused outright, or one that is simply not offered. */
export type NameVerdict = 'flist' | 'refused' | 'absent';

const MAX_NAME = 255;

export function judgeFlistName(name: string): NameVerdict {
  // A separator, a dot-dir or a control byte can only be an attempt to leave the folder or to confuse a log.
  if (name === '' || name === '.' || name === '..' || name.length > MAX_NAME || /[/\\\x00-\x1f\x7f]/.test(name)) return 'refused';
  if (name.startsWith('.') || !name.endsWith('.fl') || name === '.fl') return 'absent';
  return 'flist';
}

interface Hashed {
  identity: string;
  info: FlistInfo;
}

const HASH_BUFFER = 256 * 1024;

export class FlistCatalog {
  readonly dir: string;
  private readonly files: OpenFileCache;
  /** By name; only names seen in the last listing are kept, so it is bounded by the folder. */
  private readonly hashed = new Map<string, Promise<Hashed>>();

  constructor(dir: string) {
    this.dir = dir;
    this.files = new OpenFileCache(new MountedStore([{ prefix: '', dir }]));
  }

  /** A name judged 'flist'; throws StoreNotFoundError or StorePathError (a link leading out of the folder). */
  open(name: string): Promise<StoreEntry> {
    return this.files.open(name);
  }

  /** Every .fl served by open(), by name. */
  async list(): Promise<FlistInfo[]> {
    const root = await realpath(this.dir);
    const names = (await readdir(root)).filter((n) => judgeFlistName(n) === 'flist').sort();
    const out: FlistInfo[] = [];
    for (const name of names) {
      const full = await realpath(path.join(root, name)).catch(() => undefined);
      if (full === undefined || !full.startsWith(root + path.sep)) continue;
      const st = await stat(full).catch(() => undefined);
      if (!st?.isFile()) continue;
      const info = await this.hashOf(name, full, identity(st)).catch(() => undefined);
      if (info) out.push(info);
    }
    for (const name of this.hashed.keys()) if (!names.includes(name)) this.hashed.delete(name);
    return out;
  }

  private async hashOf(name: string, full: string, id: string): Promise<FlistInfo> {
    const cached = this.hashed.get(name);
    if (cached) {
      const h = await cached.catch(() => undefined);
      if (h?.identity === id) return h.info;
    }
    const next = hashFile(name, full);
    this.hashed.set(name, next);
    next.catch(() => {
      if (this.hashed.get(name) === next) this.hashed.delete(name);
    });
    return (await next).info;
  }
}

function identity(st: { ino: number; size: number; mtimeMs: number }): string {
  return `${st.ino}-${st.size}-${st.mtimeMs}`;
}

/** Hashes the file through one descriptor; its identity comes from the same descriptor, so a file replaced meanwhile is hashed again next time. */
async function hashFile(name: string, full: string): Promise<Hashed> {
  const fh = await open(full, 'r');
  try {
    const st = await fh.stat();
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(HASH_BUFFER, Math.max(1, st.size)));
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return { identity: identity(st), info: { name, size: st.size, sha256: hash.digest('hex'), mtime: Math.floor(st.mtimeMs / 1000) } };
  } finally {
    await fh.close();
  }
}
