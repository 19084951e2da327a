// The chunk side of `flist pack`, run on the chunk pool's worker threads
// (flist/chunk-worker.ts) as plain synchronous calls, as unpack-ops.ts does
// for unpack. A piece comes as bytes (a tarball's stream) or as a file's
// path, offset and length (a directory: the worker reads it, so its bytes
// never cross threads). When the store keeps chunks as files (dir://,
// ChunkStore.chunkDirs), the worker writes the chunk there itself: a stat
// first (a chunk already there is not written again), then a temporary name
// and a rename, so a chunk is never seen short under its id; the caller
// still syncs the store before it writes the .fl that names the chunks.
import { closeSync, constants, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import type { ChunkCodec } from './chunk.ts';
import type { ChunkDir } from './stores/types.ts';
import { errorFields } from './unpack-ops.ts';

export interface PackOp {
  op: 'pack';
  /** the piece's bytes, or where to read them */
  plain?: Uint8Array;
  file?: { path: string; offset: number; length: number };
  /** where to write the chunk (every dir whose range covers its first byte); none: the data comes back */
  dirs: ChunkDir[];
}

export type PackResult =
  /** `data` when no dir took the chunk (the caller puts it); `fresh`: written to a dir that lacked it */
  | { id: Uint8Array; key: Uint8Array; data?: Uint8Array; fresh: boolean }
  | { error: { name: string; message: string; id?: string } };

/** A dir:// store's layout, as stores/dir.ts writes it. */
function chunkFile(root: string, hex: string): string {
  return path.join(root, hex.slice(0, 2), hex);
}

export class PackOps {
  readonly #codec: ChunkCodec;
  #buf = Buffer.allocUnsafe(1 << 19);
  #tmp = 0;

  constructor(codec: ChunkCodec) {
    this.#codec = codec;
  }

  run(op: PackOp): PackResult {
    let plain: Uint8Array;
    try {
      plain = op.plain ?? this.#read(op.file!);
    } catch (e) {
      return { error: errorFields(e) };
    }
    let c;
    try {
      c = this.#codec.encode(plain);
    } catch (e) {
      return { error: errorFields(e) };
    }
    const hex = c.id.toString('hex');
    const dirs = op.dirs.filter((d) => c.id[0] >= d.start && c.id[0] <= d.end);
    if (dirs.length === 0) return { id: c.id, key: c.key, data: c.data, fresh: false };
    let fresh = false;
    const done = new Set<string>();
    for (const d of dirs) {
      if (done.has(d.root)) continue;
      done.add(d.root);
      const file = chunkFile(d.root, hex);
      try {
        if (statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
        this.#writeAtomic(file, c.data);
        fresh = true;
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        return { error: { name: 'StoreError', message: `store ${d.url}: writing chunk ${hex} failed: ${err.code ?? err.message} (${file})` } };
      }
    }
    return { id: c.id, key: c.key, fresh };
  }

  /** `length` bytes at `offset`; a file that ends sooner shrank since it was listed. */
  #read(f: { path: string; offset: number; length: number }): Uint8Array {
    if (this.#buf.length < f.length) this.#buf = Buffer.allocUnsafe(f.length);
    const fd = openSync(f.path, constants.O_RDONLY);
    let n = 0;
    try {
      while (n < f.length) {
        const got = readSync(fd, this.#buf, n, f.length - n, f.offset + n);
        if (got === 0) throw new Error(`shrank while being packed (${f.offset + n} of ${f.offset + f.length} bytes)`);
        n += got;
      }
    } finally {
      closeSync(fd);
    }
    return this.#buf.subarray(0, n);
  }

  #writeAtomic(file: string, data: Uint8Array): void {
    const tmp = `${file}.tmp-${process.pid}-${threadId}-${this.#tmp++}`;
    let fd: number;
    try {
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
    } catch (e) {
      // the first chunk of a prefix: its folder does not exist yet
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(path.dirname(file), { recursive: true });
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
    }
    try {
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
      closeSync(fd);
      fd = -1;
      renameSync(tmp, file);
    } catch (e) {
      if (fd >= 0) {
        try {
          closeSync(fd);
        } catch {
          // the first error is the one to report
        }
      }
      rmSync(tmp, { force: true });
      throw e;
    }
  }
}
