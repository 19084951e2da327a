// `flist unpack`: recreates an flist's tree under a directory. Each file is
// written under a temporary name next to its final one and renamed once
// complete, so a failure (missing chunk, bad hash, store down) leaves no
// partial file under a real name; running it again completes the tree
// (entries already there are replaced, as tar does). Owners are set before
// modes (chown clears set-uid bits); directory modes and times last,
// deepest first, so that writing inside them is not refused or does not
// bump their mtime.
// Hard links: .fl has no link table; pack gives every name of a linked inode
// the same blocks and metadata, so non-empty files alike in blocks, mode,
// owner and both times are linked again (two identical copies made in the
// same second are linked too: the price of rfs's format).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rename, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FlEntry } from './fl-file.ts';
import { orderedWindow } from './ordered.ts';
import { mapLimit } from './stores/limit.ts';
import type { ChunkSource as ChunkReader, TreeSource as FlReader } from './tree-source.ts';
import { TreeError } from './tree-errors.ts';

const run = promisify(execFile);
// Files in progress at once: small files are one chunk each, so this, not the
// transfer limit, keeps the store busy; the transfers stay capped at 20.
const FILES_AT_ONCE = 32;

export interface UnpackSummary {
  entries: number;
  files: number;
  bytes: number;
}

function linkKey(e: FlEntry): string | undefined {
  if (e.size === 0 || e.blocks.length === 0) return undefined;
  return [e.mode, e.uid, e.gid, e.mtime, e.ctime, e.size, ...e.blocks.map((b) => b.id.toString('hex'))].join(':');
}

/** The target path of an entry; refuses names that would leave the destination. */
function target(dest: string, e: FlEntry): string {
  const p = path.join(dest, e.path);
  if (p !== dest && !p.startsWith(dest + path.sep)) throw new TreeError(`${e.path}: leaves the destination directory`);
  return p;
}

/** A directory already there (an earlier, interrupted unpack) is kept; anything else in its place is an error. */
async function mkdirOrKeep(p: string): Promise<void> {
  try {
    await mkdir(p, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !(await lstat(p)).isDirectory()) throw e;
  }
}

async function setOwnerMode(p: string, e: FlEntry, isRoot: boolean): Promise<void> {
  if (isRoot) await lchown(p, e.uid, e.gid);
  if (e.type !== 'symlink') await chmod(p, e.mode & 0o7777);
}

async function writeFile(p: string, e: FlEntry, reader: ChunkReader, isRoot: boolean): Promise<void> {
  const tmp = path.join(path.dirname(p), `.${path.basename(p)}.zb-partial-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    for await (const plain of reader.chunks(e)) await fh.write(plain);
    await fh.close();
    await setOwnerMode(tmp, e, isRoot);
    await utimes(tmp, e.mtime, e.mtime);
    await rename(tmp, p);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

async function makeNode(p: string, e: FlEntry): Promise<void> {
  const kind = e.type === 'fifo' ? ['p'] : [e.type === 'char' ? 'c' : 'b', String((e.rdev >>> 8) & 0xfff), String((e.rdev & 0xff) | ((e.rdev >>> 12) & 0xfff00))];
  try {
    await run('mknod', [p, ...kind]);
  } catch (err) {
    throw new TreeError(`${e.path}: cannot create the ${e.type}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
}

/** `progress` is called after each file is written, with the bytes done so far. */
export async function unpackTree(fl: FlReader, dest: string, reader: ChunkReader, progress?: (files: number, bytes: number) => void): Promise<UnpackSummary> {
  const isRoot = process.getuid?.() === 0;
  const root = path.resolve(dest);
  await mkdir(root, { recursive: true });
  const dirs: { p: string; e: FlEntry }[] = [];
  const groups = new Map<string, FlEntry[]>();
  const files: FlEntry[][] = [];
  const summary: UnpackSummary = { entries: 0, files: 0, bytes: 0 };
  for (const e of fl.walk()) {
    summary.entries++;
    const p = target(root, e);
    if (e.type === 'dir') {
      if (e.path !== '/') await mkdirOrKeep(p);
      dirs.push({ p, e });
    } else if (e.type === 'file') {
      summary.files++;
      summary.bytes += e.size;
      const key = linkKey(e);
      const group = key === undefined ? undefined : groups.get(key);
      if (group) group.push(e);
      else {
        const g = [e];
        files.push(g);
        if (key !== undefined) groups.set(key, g);
      }
    } else if (e.type === 'symlink') {
      await rm(p, { force: true });
      await symlink(e.targetBytes ?? Buffer.alloc(0), p);
      if (isRoot) await lchown(p, e.uid, e.gid);
      await lutimes(p, e.mtime, e.mtime);
    } else if (e.type === 'fifo' || e.type === 'char' || e.type === 'block') {
      await rm(p, { force: true });
      await makeNode(p, e);
      await setOwnerMode(p, e, isRoot);
      await utimes(p, e.mtime, e.mtime);
    } else {
      throw new TreeError(`${fl.file}: ${e.path}: cannot unpack a ${e.type} (mode 0o${e.mode.toString(8)})`);
    }
  }
  let doneFiles = 0;
  let doneBytes = 0;
  await mapLimit(files, FILES_AT_ONCE, async (group) => {
    const first = target(root, group[0]);
    await writeFile(first, group[0], reader, isRoot);
    doneBytes += group[0].size;
    progress?.((doneFiles += group.length), doneBytes);
    for (const other of group.slice(1)) {
      const p = target(root, other);
      await rm(p, { force: true });
      await link(first, p);
    }
  });
  for (const { p, e } of dirs.reverse()) {
    await setOwnerMode(p, e, isRoot);
    await utimes(p, e.mtime, e.mtime);
  }
  return summary;
}

/** Writes one file's contents to out. */
export async function catFile(fl: FlReader, inner: string, reader: ChunkReader, out: NodeJS.WritableStream): Promise<void> {
  const e = fl.lookup(inner);
  if (e === undefined) throw new TreeError(`${fl.file}: ${inner}: no such path in the flist`);
  if (e.type !== 'file') throw new TreeError(`${fl.file}: ${inner}: a ${e.type}, not a regular file`);
  for await (const plain of reader.chunks(e)) {
    if (!out.write(plain)) await new Promise((r) => out.once('drain', r));
  }
}

/** Fetches and checks every chunk, several files at once; throws the first bad one in tree order. */
export async function verifyTree(fl: FlReader, reader: ChunkReader): Promise<{ files: number; chunks: number }> {
  const seen = new Set<string>();
  const fresh: FlEntry[] = [];
  for (const e of fl.walk()) {
    if (e.type !== 'file') continue;
    fresh.push({ ...e, blocks: e.blocks.filter((b) => !seen.has(b.id.toString('hex'))) });
    for (const b of e.blocks) seen.add(b.id.toString('hex'));
  }
  let chunks = 0;
  const checkFile = async (e: FlEntry): Promise<void> => {
    for await (const _plain of reader.chunks(e)) chunks++;
  };
  for await (const _done of orderedWindow(fresh, FILES_AT_ONCE, checkFile));
  return { files: fresh.length, chunks };
}
