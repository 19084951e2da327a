// `flist pack` from a directory: walks the tree (names in byte order, so the
// result does not depend on readdir's order), cuts each regular file into
// 512 KiB chunks encoded on the chunk pool, puts each chunk the store does not
// have yet (DEFAULT_TRANSFERS in flight) and writes the .fl. Several files
// are read at once (each file's chunks stay in order). Hard links share
// their first name's blocks (the file is read once). Convergent chunks and
// the writer's sorted inode numbering make two packs of one tree identical.
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import { CHUNK_SIZE } from './chunk.ts';
import type { ChunkPool } from './chunk-pool.ts';
import { FlWriter, entryType, type FlMeta, type FlWriterNode } from './fl-file.ts';
import { TaskQueue } from './ordered.ts';
import { DEFAULT_TRANSFERS } from './stores/limit.ts';
import type { RouteSpec } from './stores/router.ts';
import type { ChunkStore } from './stores/types.ts';
import { TreeError } from './tree-errors.ts';

/** Files read and encoded at once: enough to keep the pool busy with small files. */
const FILES_AT_ONCE = 8;

export interface PackOptions {
  pool: ChunkPool;
  store: ChunkStore;
  /** Written to the .fl's route table (passwords stripped by the writer). */
  routes: RouteSpec[];
  tags?: [string, string][];
  /** Called after each file is chunked, with the bytes done so far. */
  progress?: (files: number, bytes: number) => void;
}

export interface PackSummary {
  entries: number;
  files: number;
  bytes: number;
  chunks: number;
  uploaded: number;
}

function meta(st: Stats, size: number): FlMeta {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size, mtime: Math.floor(st.mtimeMs / 1000), ctime: Math.floor(st.ctimeMs / 1000), rdev: st.rdev };
}

async function* fileChunks(file: string, size: number): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    for (let pos = 0; pos < size; ) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_SIZE, size - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new TreeError(`${file}: shrank while being packed (${pos} of ${size} bytes)`);
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export async function packDir(dir: string, outFile: string, opts: PackOptions): Promise<PackSummary> {
  const rootStat = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
    throw new TreeError(`${dir}: cannot read the source: ${e.code ?? e.message}`);
  });
  if (!rootStat.isDirectory()) throw new TreeError(`${dir}: not a directory`);
  const writer = new FlWriter(meta(rootStat, 0));
  for (const [k, v] of opts.tags ?? []) writer.setTag(k, v);
  for (const r of opts.routes) writer.addRoute(r.start, r.end, r.url);
  const summary: PackSummary = { entries: 1, files: 0, bytes: 0, chunks: 0, uploaded: 0 };
  const uploads = new TaskQueue(DEFAULT_TRANSFERS);
  const seenChunks = new Set<string>();
  const files = new TaskQueue(FILES_AT_ONCE);
  const firstNames = new Map<string, FlWriterNode>();
  const laterNames: [FlWriterNode, FlWriterNode][] = [];

  let doneFiles = 0;
  let doneBytes = 0;
  const packFile = async (file: string, node: FlWriterNode, size: number): Promise<void> => {
    await chunkFile(file, node, size);
    doneBytes += size;
    opts.progress?.(++doneFiles, doneBytes);
  };
  const chunkFile = async (file: string, node: FlWriterNode, size: number): Promise<void> => {
    for await (const c of opts.pool.encodeAll(fileChunks(file, size))) {
      node.blocks.push({ id: c.id, key: c.key });
      summary.chunks++;
      const hex = c.id.toString('hex');
      if (seenChunks.has(hex)) continue;
      seenChunks.add(hex);
      await uploads.add(async () => {
        try {
          if (await opts.store.has(c.id)) return;
          await opts.store.put(c.id, c.data);
        } catch (e) {
          throw new TreeError(`${file}: ${(e as Error).message.split('\n')[0]}`);
        }
        summary.uploaded++;
      });
    }
  };

  const walk = async (src: string, parent: FlWriterNode): Promise<void> => {
    const names = (await readdir(src)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const full = path.join(src, name);
      const st = await lstat(full);
      summary.entries++;
      const type = entryType(st.mode);
      if (type === 'dir') {
        await walk(full, writer.add(parent, name, meta(st, 0)));
      } else if (type === 'symlink') {
        const target = await readlink(full, { encoding: 'buffer' });
        writer.add(parent, name, meta(st, target.length), target);
      } else if (type === 'file') {
        const node = writer.add(parent, name, meta(st, st.size));
        summary.files++;
        summary.bytes += st.size;
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? firstNames.get(inode) : undefined;
        if (first) {
          laterNames.push([node, first]);
          continue;
        }
        if (st.nlink > 1) firstNames.set(inode, node);
        await files.add(() => packFile(full, node, st.size));
      } else if (type === 'unknown') {
        throw new TreeError(`${full}: unknown file type (mode 0o${st.mode.toString(8)})`);
      } else {
        writer.add(parent, name, meta(st, 0));
      }
    }
  };
  try {
    await walk(dir, writer.root);
  } finally {
    // files and uploads already started finish (or fail) before the error goes up
    await files.drain().finally(() => uploads.drain());
  }
  for (const [node, first] of laterNames) node.blocks.push(...first.blocks);
  // the .fl names the chunks: they are on disk before it is
  await opts.store.sync();
  writer.write(outFile);
  return summary;
}
