// The native file path of `flist unpack` (flist/native/unpack_files.c): whole
// files whose chunks are all local files (a dir:// store, a filled cache)
// are written by the addon on libuv's thread pool, many files per call, so
// no worker thread has to start and no message or promise is made per file.
// A file the addon could not write (a chunk file missing, a chunk refused, a
// filesystem error) comes back by index, its temporary file removed: the
// caller writes it again by the worker path, which fetches or names the
// failure. This module only encodes batches and runs them.
import type { CodecAddon } from './codec-addon.ts';

export interface NativeFile {
  tmp: string;
  final: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  chown: boolean;
  /** plain bytes, for cutting batches */
  size: number;
  chunks: { id: Uint8Array; key: Uint8Array; path: string }[];
}

/** Files per call, and plain bytes per call (a larger file goes alone). */
const BATCH_FILES = 128;
const BATCH_BYTES = 8 << 20;

export interface NativeUnpacker {
  (batch: Uint8Array, count: number): Promise<Int32Array>;
}

/** The addon's unpackFiles, or undefined when the addon is not built (or older). */
export function nativeUnpacker(addon: CodecAddon | undefined): NativeUnpacker | undefined {
  const fn = (addon as { unpackFiles?: NativeUnpacker } | undefined)?.unpackFiles;
  return typeof fn === 'function' ? fn : undefined;
}

/** The batch as unpack_files.c reads it (see there). */
export function encodeBatch(files: NativeFile[], umask: number): Buffer {
  let size = 4;
  const paths = files.map((f) => ({ tmp: Buffer.from(f.tmp), final: Buffer.from(f.final), chunks: f.chunks.map((c) => Buffer.from(c.path)) }));
  for (let i = 0; i < files.length; i++) {
    size += 36 + paths[i].tmp.length + paths[i].final.length;
    for (const p of paths[i].chunks) size += 68 + p.length;
  }
  const b = Buffer.allocUnsafe(size);
  let o = b.writeUInt32LE(umask, 0);
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    const p = paths[i];
    o = b.writeUInt32LE(f.chown ? 1 : 0, o);
    o = b.writeUInt32LE(f.mode >>> 0, o);
    o = b.writeUInt32LE(f.uid >>> 0, o);
    o = b.writeUInt32LE(f.gid >>> 0, o);
    o = b.writeDoubleLE(f.mtime, o);
    o = b.writeUInt32LE(p.tmp.length, o);
    o = b.writeUInt32LE(p.final.length, o);
    o = b.writeUInt32LE(f.chunks.length, o);
    o += p.tmp.copy(b, o);
    o += p.final.copy(b, o);
    for (let j = 0; j < f.chunks.length; j++) {
      b.set(f.chunks[j].id, o);
      b.set(f.chunks[j].key, o + 32);
      o = b.writeUInt32LE(p.chunks[j].length, o + 64);
      o += p.chunks[j].copy(b, o);
    }
  }
  return b;
}

/** Cuts files into batches: at most BATCH_FILES files and BATCH_BYTES bytes each, a larger file alone. */
export function batches(files: NativeFile[]): NativeFile[][] {
  const out: NativeFile[][] = [];
  let cur: NativeFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (cur.length > 0 && (cur.length >= BATCH_FILES || bytes + f.size > BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += f.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Runs the batches, `parallel` calls at once (the pool threads doing the
 * work). `prepare` (synchronous: e.g. the batch's folders) runs for each
 * batch before it starts, and for the next ones while it runs, so that this
 * thread's share overlaps the pool's. `done` hears each batch's files that
 * were written and those that were not; it or `prepare` may stop the run by
 * throwing (no new batch starts; those running finish).
 */
export async function runBatches(
  unpack: NativeUnpacker,
  list: NativeFile[][],
  parallel: number,
  umask: number,
  prepare: (batch: NativeFile[]) => void,
  done: (written: NativeFile[], failed: NativeFile[]) => Promise<void>,
): Promise<void> {
  let next = 0;
  let prepared = 0;
  let failure: unknown;
  const prepareTo = (end: number) => {
    for (; prepared < Math.min(end, list.length); prepared++) prepare(list[prepared]);
  };
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < list.length) {
      const i = next++;
      let running: Promise<Int32Array>;
      try {
        prepareTo(i + 1);
        running = unpack(encodeBatch(list[i], umask), list[i].length);
        prepareTo(i + 1 + parallel);
      } catch (e) {
        failure ??= e;
        break;
      }
      const batch = list[i];
      const results = await running;
      try {
        await done(
          batch.filter((_, i) => results[i] === 0),
          batch.filter((_, i) => results[i] !== 0),
        );
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, lane));
  if (failure !== undefined) throw failure;
}
