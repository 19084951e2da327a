// `flist ls`: the tree of an .fl as lines (like `ls -l`, full paths) or as JSON.
import type { FlEntry, FlReader } from './fl-file.ts';

export interface ListedEntry {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  rdev?: number;
  target?: string;
  chunks?: number;
}

export interface Listing {
  file: string;
  tags: Record<string, string>;
  routes: { start: number; end: number; url: string }[];
  entries: ListedEntry[];
}

export function listed(e: FlEntry): ListedEntry {
  const out: ListedEntry = { path: e.path, type: e.type, mode: (e.mode & 0o7777).toString(8).padStart(4, '0'), uid: e.uid, gid: e.gid, size: e.size, mtime: e.mtime };
  if (e.type === 'char' || e.type === 'block') out.rdev = e.rdev;
  if (e.target !== undefined) out.target = e.target;
  if (e.type === 'file') out.chunks = e.blocks.length;
  return out;
}

export function listFl(fl: FlReader): Listing {
  return { file: fl.file, tags: Object.fromEntries(fl.tags()), routes: fl.routes(), entries: [...fl.walk()].map(listed) };
}

const TYPE_CHAR: Record<string, string> = { dir: 'd', file: '-', symlink: 'l', fifo: 'p', char: 'c', block: 'b', socket: 's' };

function modeString(type: string, mode: string): string {
  const m = parseInt(mode, 8);
  const rwx = (bits: number, special: boolean, s: string) => `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? s : s.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (TYPE_CHAR[type] ?? '?') + rwx(m >> 6, (m & 0o4000) !== 0, 's') + rwx(m >> 3, (m & 0o2000) !== 0, 's') + rwx(m, (m & 0o1000) !== 0, 't');
}

export function listingLines(l: Listing): string[] {
  return l.entries.map((e) => `${modeString(e.type, e.mode)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(e.size).padStart(10)} ${e.path}${e.target !== undefined ? ` -> ${e.target}` : ''}`);
}
