// `flist unpack`: recreates an flist's tree under a directory. Each file is
// written under a temporary name next to its final one and renamed once
// complete, so a failure (missing chunk, bad hash, store down) leaves no
// partial file under a real name; running it again completes the tree
// (entries already there are replaced, as tar does). Owners are set before
// modes (chown clears set-uid bits); directory modes and times last,
// deepest first, so that writing inside them is not refused or does not
// bump their mtime. With a ChunkReader (an .fl), the filesystem calls run on
// the chunk pool's workers (flist/unpack-ops.ts): folders in one op per
// batch of the walk, each small file in one op (read its chunk, decode,
// create, write, owner, mode, times, rename), a larger file's chunks written
// at their offsets by several ops at once. A reader with only chunks()
// (another flist format's) writes through fs/promises, in the same order.
// Hard links: .fl has no link table; pack gives every name of a linked inode
// the same blocks and metadata, so non-empty files alike in blocks, mode,
// owner and both times are linked again (two identical copies made in the
// same second are linked too: the price of rfs's format).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rename, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHUNK_SIZE, createChunkCodec } from './chunk.ts';
import type { FlEntry } from './fl-file.ts';
import { orderedWindow, TaskQueue } from './ordered.ts';
import type { ChunkReader } from './read-chunks.ts';
import type { ChunkSource, TreeSource } from './tree-source.ts';
import { DEFAULT_TRANSFERS } from './stores/limit.ts';
import { TreeError } from './tree-errors.ts';
import { UnpackOps, type EntryMeta, type UnpackOp } from './unpack-ops.ts';
import { batches, runBatches, type NativeFile, type NativeUnpacker } from './unpack-native.ts';

const run = promisify(execFile);
// Files in progress at once: small files are one chunk each, so this, not the
// transfer limit, keeps the store busy (the transfers stay capped at 20) and
// the pool's batches full.
const FILES_AT_ONCE = 64;
/** Entries walked between two folder ops. */
const WALK_BATCH = 256;
/** Files of up to this many chunks are written by one op; larger ones chunk by chunk, several at once. */
const WHOLE_FILE_CHUNKS = 2;

/** The tree of an flist, whichever its format (an .fl's FlReader, a legacy .flist's reader). */
export type UnpackTree = TreeSource;

/** A reader that can only give a file's plain chunks, in order (the legacy .flist's). */
export type PlainChunks = ChunkSource;

export interface UnpackSummary {
  entries: number;
  files: number;
  bytes: number;
}

function linkKey(e: FlEntry): string | undefined {
  if (e.size === 0 || e.blocks.length === 0) return undefined;
  return [e.mode, e.uid, e.gid, e.mtime, e.ctime, e.size, ...e.blocks.map((b) => b.id.toString('hex'))].join(':');
}

/** The walk's bookkeeping, the same for both unpack paths: the counts, the folders (for their metadata at the end) and hard links. */
class WalkTally {
  readonly summary: UnpackSummary = { entries: 0, files: 0, bytes: 0 };
  readonly dirs: { p: string; e: FlEntry }[] = [];
  readonly links: { p: string; first: string }[] = [];
  readonly #firsts = new Map<string, string>();

  /** Counts `e` (at `p`): 'dir' (kept), 'link' (another name of a file seen: kept), 'file' (the first name), else 'other'. */
  see(e: FlEntry, p: string): 'dir' | 'link' | 'file' | 'other' {
    this.summary.entries++;
    if (e.type === 'dir') {
      this.dirs.push({ p, e });
      return 'dir';
    }
    if (e.type !== 'file') return 'other';
    this.summary.files++;
    this.summary.bytes += e.size;
    const key = linkKey(e);
    const first = key === undefined ? undefined : this.#firsts.get(key);
    if (first !== undefined) {
      this.links.push({ p, first });
      return 'link';
    }
    if (key !== undefined) this.#firsts.set(key, p);
    return 'file';
  }
}

/** The target path of an entry; refuses names that would leave the destination. */
function target(dest: string, e: FlEntry): string {
  const p = path.join(dest, e.path);
  if (p !== dest && !p.startsWith(dest + path.sep)) throw new TreeError(`${e.path}: leaves the destination directory`);
  return p;
}

const entryMeta = (e: FlEntry, chown: boolean): EntryMeta => ({ mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, chown });

async function setOwnerMode(p: string, e: FlEntry, isRoot: boolean): Promise<void> {
  if (isRoot) await lchown(p, e.uid, e.gid);
  if (e.type !== 'symlink') await chmod(p, e.mode & 0o7777);
}

/** The filesystem side of unpack: on the pool's workers, or through fs/promises. */
interface TreeWriter {
  /** folders in order, parents first; one already there (an interrupted unpack) is kept */
  mkdirs(paths: string[]): Promise<void>;
  symlink(p: string, e: FlEntry): Promise<void>;
  /** the file under `tmp`, renamed to `p` once complete; `tmp` removed on failure */
  file(p: string, tmp: string, e: FlEntry): Promise<void>;
  /** owners, modes and times, in order */
  metas(list: { p: string; e: FlEntry }[]): Promise<void>;
}

function poolWriter(reader: ChunkReader, isRoot: boolean): TreeWriter {
  return {
    mkdirs: (paths) => reader.runTree({ op: 'mkdirs', paths }, 'creating the folders'),
    symlink: (p, e) => reader.runTree({ op: 'symlink', path: p, target: e.targetBytes ?? Buffer.alloc(0), meta: entryMeta(e, isRoot) }, e.path),
    file: (p, tmp, e) => writeFile(p, tmp, e, reader, isRoot),
    metas: (list) => reader.runTree({ op: 'metas', list: list.map(({ p, e }) => ({ path: p, meta: entryMeta(e, isRoot) })) }, "setting the folders' owners, modes and times"),
  };
}

async function mkdirOrKeep(p: string): Promise<void> {
  try {
    await mkdir(p, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !(await lstat(p)).isDirectory()) throw e;
  }
}

function fsWriter(reader: PlainChunks, isRoot: boolean): TreeWriter {
  return {
    mkdirs: async (paths) => {
      for (const p of paths) await mkdirOrKeep(p);
    },
    symlink: async (p, e) => {
      await rm(p, { force: true });
      await symlink(e.targetBytes ?? Buffer.alloc(0), p);
      if (isRoot) await lchown(p, e.uid, e.gid);
      await lutimes(p, e.mtime, e.mtime);
    },
    file: async (p, tmp, e) => {
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
    },
    metas: async (list) => {
      for (const { p, e } of list) {
        await setOwnerMode(p, e, isRoot);
        await utimes(p, e.mtime, e.mtime);
      }
    },
  };
}

const hasOps = (r: ChunkReader | PlainChunks): r is ChunkReader => 'runFile' in r;

/** Writes a file under `tmp`, sets its metadata and renames it to `p`; on failure `tmp` is removed. */
async function writeFile(p: string, tmp: string, e: FlEntry, reader: ChunkReader, isRoot: boolean): Promise<void> {
  const finish = { ...entryMeta(e, isRoot), final: p };
  if (e.blocks.length <= WHOLE_FILE_CHUNKS) {
    await reader.runFile(e, e.blocks, { file: tmp, create: true, finish, checkKey: false });
    return;
  }
  try {
    await reader.runFile(e, [], { file: tmp, create: true });
    if (!(await writeAtOffsets(tmp, e, reader))) await writeInOrder(tmp, e, reader);
    await reader.runFile(e, [], { file: tmp, finish });
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Each chunk at i x 512 KiB (as pack cuts files), several at once; false, having written nothing, when the first chunk is not 512 KiB. */
async function writeAtOffsets(tmp: string, e: FlEntry, reader: ChunkReader): Promise<boolean> {
  const last = e.blocks.length - 1;
  // checked alone first: a file cut otherwise is written in order instead
  const first = await reader.runFile(e, [e.blocks[0]], { file: tmp, offset: 0, expect: CHUNK_SIZE, checkKey: false });
  if ('uneven' in first) return false;
  const rest = e.blocks.slice(1).map((b, i) => ({ b, i: i + 1 }));
  for await (const r of orderedWindow(rest, DEFAULT_TRANSFERS, ({ b, i }) => reader.runFile(e, [b], { file: tmp, offset: i * CHUNK_SIZE, expect: i === last ? undefined : CHUNK_SIZE, checkKey: false }))) {
    if ('uneven' in r) throw new TreeError(`${e.path}: a chunk in the middle of the file decodes to ${r.uneven} bytes where its first one has ${CHUNK_SIZE}`);
  }
  return true;
}

/** Chunks of any sizes, one after the other. */
async function writeInOrder(tmp: string, e: FlEntry, reader: ChunkReader): Promise<void> {
  let offset = 0;
  for (const b of e.blocks) {
    const r = await reader.runFile(e, [b], { file: tmp, offset, checkKey: false });
    if ('bytes' in r) offset += r.bytes;
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
export async function unpackTree(fl: UnpackTree, dest: string, reader: ChunkReader | PlainChunks, progress?: (files: number, bytes: number) => void): Promise<UnpackSummary> {
  const isRoot = process.getuid?.() === 0;
  const root = path.resolve(dest);
  await mkdir(root, { recursive: true });
  const native = hasOps(reader) ? reader.nativeFiles() : undefined;
  if (native !== undefined) return unpackLocal(fl, root, reader as ChunkReader, native, isRoot, progress);
  const writer = hasOps(reader) ? poolWriter(reader, isRoot) : fsWriter(reader, isRoot);
  const tally = new WalkTally();
  const { dirs, links, summary } = tally;
  const tasks = new TaskQueue(FILES_AT_ONCE);
  let doneFiles = 0;
  let doneBytes = 0;
  // one random part per run, a counter per file: a name no earlier run left behind
  const runId = randomBytes(4).toString('hex');
  let n = 0;

  // The walk is streamed: each WALK_BATCH entries, their folders go to a
  // worker in one op, chained after the previous batch's (parents first),
  // and their files and symlinks start once those folders exist, while the
  // walk goes on (it waits only when FILES_AT_ONCE tasks are running).
  let folders: Promise<void> = Promise.resolve();
  let batchDirs: string[] = [];
  let batch: (() => Promise<void>)[] = [];
  const flush = async (): Promise<void> => {
    const paths = batchDirs;
    const ready = paths.length === 0 ? folders : folders.then(() => writer.mkdirs(paths));
    ready.catch(() => undefined);
    folders = ready;
    for (const work of batch) {
      await tasks.add(async () => {
        await ready;
        await work();
      });
    }
    batchDirs = [];
    batch = [];
  };

  try {
    for (const e of fl.walk()) {
      const p = target(root, e);
      const kind = tally.see(e, p);
      if (kind === 'dir') {
        if (e.path !== '/') batchDirs.push(p);
      } else if (kind === 'file') {
        batch.push(async () => {
          const tmp = path.join(path.dirname(p), `.${path.basename(p)}.zb-partial-${runId}-${n++}`);
          await writer.file(p, tmp, e);
          doneBytes += e.size;
          progress?.(++doneFiles, doneBytes);
        });
      } else if (kind === 'link') {
        // made last, from its first name
      } else if (e.type === 'symlink') {
        batch.push(() => writer.symlink(p, e));
      } else if (e.type === 'fifo' || e.type === 'char' || e.type === 'block') {
        batch.push(async () => {
          await rm(p, { force: true });
          await makeNode(p, e);
          await setOwnerMode(p, e, isRoot);
          await utimes(p, e.mtime, e.mtime);
        });
      } else {
        throw new TreeError(`${fl.file}: ${e.path}: cannot unpack a ${e.type} (mode 0o${e.mode.toString(8)})`);
      }
      if (summary.entries % WALK_BATCH === 0) await flush();
    }
    await flush();
    await folders;
  } finally {
    // tasks already started finish (or fail) before the error goes up: none is cut off mid-file
    await tasks.drain();
  }
  // hard links last: every first name is written by now
  for (const { p, first } of links) {
    await rm(p, { force: true });
    await link(first, p);
    progress?.(++doneFiles, doneBytes);
  }
  await writer.metas(dirs.reverse());
  return summary;
}

/** A file for the addon, with its entry for the worker path should the addon not write it. */
type LocalFile = NativeFile & { e: FlEntry };

/**
 * unpackTree over a store that keeps chunks as local files: the walk first,
 * then the files by the addon, largest first (so that the threads end
 * together), many per call, each batch's folders made on this thread (parents
 * first) before it starts, while earlier batches run; a file the addon did
 * not write goes by the worker path, whose error ends the run (calls already
 * running finish). Then the folders no file needed, files of other stores,
 * symlinks and special files, hard links, and the folders' metadata.
 */
async function unpackLocal(
  fl: UnpackTree,
  root: string,
  reader: ChunkReader,
  native: { unpack: NativeUnpacker; parallel: number },
  isRoot: boolean,
  progress?: (files: number, bytes: number) => void,
): Promise<UnpackSummary> {
  // folder, symlink and metadata ops run here, synchronously, as the workers run them
  const ops = new UnpackOps(await createChunkCodec());
  const run = (op: Exclude<UnpackOp, { op: 'file' }>, what: string) => {
    const r = ops.run(op);
    if ('error' in r) throw new TreeError(`${fl.file}: ${what}: ${r.error.message.split('\n')[0]}`);
  };
  const tally = new WalkTally();
  const { dirs, links, summary } = tally;
  const folders: string[] = [];
  const local: LocalFile[] = [];
  const remote: { p: string; e: FlEntry }[] = [];
  const rest: { p: string; e: FlEntry }[] = [];
  for (const e of fl.walk()) {
    const p = target(root, e);
    const kind = tally.see(e, p);
    if (kind === 'dir') {
      if (e.path !== '/') folders.push(p);
    } else if (kind === 'file') {
      const paths = reader.localPaths(e);
      if (paths === undefined) {
        remote.push({ p, e });
        continue;
      }
      local.push({ e, tmp: '', final: p, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, chown: isRoot, size: e.size, chunks: e.blocks.map((b, i) => ({ id: b.id, key: b.key, path: paths[i] })) });
    } else if (kind === 'link') {
      // made last, from its first name
    } else if (e.type === 'symlink' || e.type === 'fifo' || e.type === 'char' || e.type === 'block') {
      rest.push({ p, e });
    } else {
      throw new TreeError(`${fl.file}: ${e.path}: cannot unpack a ${e.type} (mode 0o${e.mode.toString(8)})`);
    }
  }
  // Folders: those of each batch's files (their parents first) just before
  // it starts and while the one before runs, the rest (empty ones) after.
  const made = new Set<string>([root]);
  const makeFolders = (paths: string[]) => run({ op: 'mkdirs', paths }, 'creating the folders');
  const parentsOf = (batch: NativeFile[]) => {
    const chain: string[] = [];
    for (const f of batch) {
      const start = chain.length;
      for (let d = path.dirname(f.final); !made.has(d); d = path.dirname(d)) {
        made.add(d);
        chain.push(d);
      }
      // top-down: a folder after its parent
      chain.push(...chain.splice(start).reverse());
    }
    if (chain.length > 0) makeFolders(chain);
  };

  const runId = randomBytes(4).toString('hex');
  let n = 0;
  const tmpOf = (p: string) => path.join(path.dirname(p), `.${path.basename(p)}.zb-partial-${runId}-${n++}`);
  let doneFiles = 0;
  let doneBytes = 0;
  const written = (e: FlEntry) => {
    doneBytes += e.size;
    progress?.(++doneFiles, doneBytes);
  };
  // Files by the worker path (the addon could not write them, or their chunks are not local files), 64 at
  // once beside the addon's batches; every one started finishes before the first failure goes up.
  const byWorkers = new TaskQueue(FILES_AT_ONCE);
  const viaWorkers = (p: string, e: FlEntry) =>
    byWorkers.add(async () => {
      await writeFile(p, tmpOf(p), e, reader, isRoot);
      written(e);
    });
  local.sort((a, b) => b.size - a.size);
  for (const f of local) f.tmp = tmpOf(f.final);
  try {
    await runBatches(native.unpack, batches(local), native.parallel, process.umask(), parentsOf, async (ok, failed) => {
      for (const f of ok as LocalFile[]) written(f.e);
      for (const f of failed as LocalFile[]) await viaWorkers(f.final, f.e);
    });
    makeFolders(folders.filter((d) => !made.has(d)));
    for (const { p, e } of remote) await viaWorkers(p, e);
  } finally {
    await byWorkers.drain();
  }

  for (const { p, e } of rest) {
    if (e.type === 'symlink') {
      run({ op: 'symlink', path: p, target: e.targetBytes ?? Buffer.alloc(0), meta: entryMeta(e, isRoot) }, e.path);
      continue;
    }
    await rm(p, { force: true });
    await makeNode(p, e);
    await setOwnerMode(p, e, isRoot);
    await utimes(p, e.mtime, e.mtime);
  }
  // hard links last: every first name is written by now
  for (const { p, first } of links) {
    await rm(p, { force: true });
    await link(first, p);
    progress?.(++doneFiles, doneBytes);
  }
  run({ op: 'metas', list: dirs.reverse().map(({ p, e }) => ({ path: p, meta: entryMeta(e, isRoot) })) }, "setting the folders' owners, modes and times");
  return summary;
}

/** Writes one file's contents to out. */
export async function catFile(fl: UnpackTree, inner: string, reader: PlainChunks, out: NodeJS.WritableStream): Promise<void> {
  const e = fl.lookup(inner);
  if (e === undefined) throw new TreeError(`${fl.file}: ${inner}: no such path in the flist`);
  if (e.type !== 'file') throw new TreeError(`${fl.file}: ${inner}: a ${e.type}, not a regular file`);
  for await (const plain of reader.chunks(e)) {
    if (!out.write(plain)) await new Promise((r) => out.once('drain', r));
  }
}

/** Fetches and checks every chunk, several files at once; throws the first bad one in tree order. */
export async function verifyTree(fl: UnpackTree, reader: ChunkReader | PlainChunks): Promise<{ files: number; chunks: number }> {
  const seen = new Set<string>();
  const fresh: FlEntry[] = [];
  for (const e of fl.walk()) {
    if (e.type !== 'file') continue;
    fresh.push({ ...e, blocks: e.blocks.filter((b) => !seen.has(b.id.toString('hex'))) });
    for (const b of e.blocks) seen.add(b.id.toString('hex'));
  }
  let chunks = 0;
  const checkFile = async (e: FlEntry): Promise<void> => {
    if (!hasOps(reader)) {
      for await (const _plain of reader.chunks(e)) chunks++;
      return;
    }
    for await (const _r of orderedWindow(e.blocks, DEFAULT_TRANSFERS, (b) => reader.runFile(e, [b], {}))) chunks++;
  };
  for await (const _done of orderedWindow(fresh, FILES_AT_ONCE, checkFile));
  return { files: fresh.length, chunks };
}
