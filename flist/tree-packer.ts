// The part of `flist pack` every source shares: a tree model (FlWriter) that
// a source fills entry by entry, files fed as 512 KiB pieces that are encoded
// on the chunk pool and put in the store when it lacks them, then the .fl.
// A file's pieces are handed to the pool without waiting for their results,
// so the source reads on (the next file of a tarball) while the pool works;
// at most `pool.capacity` pieces are between reading and upload, which bounds
// memory. Each block lands at its index, so a file's blocks stay in order
// whatever order the encodings finish in; the writer numbers inodes at write
// time, so two packs of one tree give byte-identical .fl files.
import { CHUNK_SIZE, type EncodedChunk } from './chunk.ts';
import type { ChunkPool } from './chunk-pool.ts';
import { FlistError } from './errors.ts';
import { entryType, FlWriter, type FlMeta, type FlWriterNode } from './fl-file.ts';
import { TaskQueue } from './ordered.ts';
import { DEFAULT_TRANSFERS } from './stores/limit.ts';
import type { RouteSpec } from './stores/router.ts';
import type { PackOp } from './pack-ops.ts';
import type { ChunkDir, ChunkStore } from './stores/types.ts';
import { TreeError } from './tree-errors.ts';

/** How far a source is through its input, when it can tell (a tarball's bytes read of its size). */
export interface InputProgress {
  done: number;
  total: number;
}

export interface PackOptions {
  pool: ChunkPool;
  store: ChunkStore;
  /** Written to the .fl's route table (passwords stripped by the writer). */
  routes: RouteSpec[];
  tags?: [string, string][];
  /** Called after each file is read, with the files and bytes done so far and, for a tarball, the input read. */
  progress?: (files: number, bytes: number, input?: InputProgress) => void;
}

export interface PackSummary {
  entries: number;
  files: number;
  bytes: number;
  chunks: number;
  uploaded: number;
}

/**
 * Pieces read by the workers from their files, in flight at once, when the
 * chunks go to files too (no bytes held here): enough for full batches on
 * every worker.
 */
const PATH_PIECES_PER_THREAD = 128;

/** A counting semaphore: acquire() waits while `limit` are held. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

export class TreePacker {
  readonly writer: FlWriter;
  readonly summary: PackSummary = { entries: 1, files: 0, bytes: 0, chunks: 0, uploaded: 0 };
  /** Set by a source that can tell how far through its input it is. */
  input: (() => InputProgress) | undefined;
  readonly #opts: PackOptions;
  readonly #uploads = new TaskQueue(DEFAULT_TRANSFERS);
  readonly #slots: Slots;
  /** Pieces given by path; bounded by the memory of returned chunks only when the store is not local. */
  readonly #pathSlots: Slots;
  /** The store's chunk folders (dir://): the workers write the chunks there themselves. */
  readonly #dirs: ChunkDir[] | undefined;
  readonly #pending = new Set<Promise<void>>();
  readonly #seen = new Set<string>();
  readonly #links: [FlWriterNode, FlWriterNode][] = [];
  #failure: Error | undefined;
  #doneFiles = 0;
  #doneBytes = 0;

  constructor(rootMeta: FlMeta, opts: PackOptions) {
    this.#opts = opts;
    this.#slots = new Slots(opts.pool.capacity);
    this.#dirs = opts.store.chunkDirs?.();
    this.#pathSlots = new Slots(this.#dirs ? opts.pool.threads * PATH_PIECES_PER_THREAD : opts.pool.capacity);
    this.writer = new FlWriter(rootMeta);
    for (const [k, v] of opts.tags ?? []) this.writer.setTag(k, v);
    for (const r of opts.routes) this.writer.addRoute(r.start, r.end, r.url);
  }

  get root(): FlWriterNode {
    return this.writer.root;
  }

  /** Adds an entry; a regular file then gets its content from addFile or linkTo. */
  add(parent: FlWriterNode, name: string, meta: FlMeta, target?: Buffer): FlWriterNode {
    const node = this.writer.add(parent, name, meta, target);
    this.summary.entries++;
    if (entryType(meta.mode) === 'file') {
      this.summary.files++;
      this.summary.bytes += meta.size;
    }
    return node;
  }

  /** Takes an entry out again (a tarball that names a path twice: the later one wins, as with tar -x). */
  remove(parent: FlWriterNode, name: string): void {
    const node = parent.children.get(name);
    if (node === undefined) return;
    parent.children.delete(name);
    this.summary.entries--;
    if (entryType(node.meta.mode) === 'file') {
      this.summary.files--;
      this.summary.bytes -= node.meta.size;
    }
  }

  /**
   * Feeds a file's content as pieces of at most CHUNK_SIZE bytes. Returns once
   * every piece is handed to the pool, not encoded: the caller may read on.
   * `label` names the file in a refusal.
   */
  async addFile(node: FlWriterNode, pieces: AsyncIterable<Buffer>, label: string): Promise<void> {
    let index = 0;
    let bytes = 0;
    for await (const piece of pieces) {
      if (this.#failure) throw this.#failure;
      await this.#slots.acquire();
      const at = index++;
      bytes += piece.length;
      this.#track(this.#chunk(node, at, piece, label), this.#slots, label);
    }
    if (this.#failure) throw this.#failure;
    this.#fileDone(bytes);
  }

  /**
   * A file of `size` bytes on this machine: its pieces are read, encoded and
   * (dir store) written by the workers. Returns once every piece is handed
   * to the pool.
   */
  async addFileAt(node: FlWriterNode, file: string, size: number, label: string): Promise<void> {
    for (let at = 0, offset = 0; offset < size; at++, offset += CHUNK_SIZE) {
      if (this.#failure) throw this.#failure;
      await this.#pathSlots.acquire();
      const op: PackOp = { op: 'pack', file: { path: file, offset, length: Math.min(CHUNK_SIZE, size - offset) }, dirs: this.#dirs ?? [] };
      this.#track(this.#packOp(node, at, op, label), this.#pathSlots, label);
    }
    if (this.#failure) throw this.#failure;
    this.#fileDone(size);
  }

  #track(work: Promise<void>, slots: Slots, label: string): void {
    const p: Promise<void> = work
      .catch((e: unknown) => {
        this.#failure ??= e instanceof FlistError ? e : new TreeError(`${label}: ${(e as Error).message.split('\n')[0]}`);
      })
      .finally(() => {
        slots.release();
        this.#pending.delete(p);
      });
    this.#pending.add(p);
  }

  async #packOp(node: FlWriterNode, at: number, op: PackOp, label: string): Promise<void> {
    const r = await this.#opts.pool.pack(op);
    if ('error' in r) throw new TreeError(`${label}: ${r.error.message.split('\n')[0]}`);
    const id = Buffer.from(r.id.buffer, r.id.byteOffset, r.id.byteLength);
    const key = Buffer.from(r.key.buffer, r.key.byteOffset, r.key.byteLength);
    if (r.data !== undefined) return this.#stored(node, at, { id, key, data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) }, label);
    node.blocks[at] = { id, key };
    this.summary.chunks++;
    const hex = id.toString('hex');
    if (this.#seen.has(hex)) return;
    this.#seen.add(hex);
    if (r.fresh) this.summary.uploaded++;
  }

  async #chunk(node: FlWriterNode, at: number, piece: Buffer, label: string): Promise<void> {
    if (this.#dirs) return this.#packOp(node, at, { op: 'pack', plain: piece, dirs: this.#dirs }, label);
    return this.#stored(node, at, await this.#opts.pool.encode(piece), label);
  }

  /** An encoded chunk the store does not hold as a file we can write: put() unless it has it. */
  async #stored(node: FlWriterNode, at: number, c: EncodedChunk, label: string): Promise<void> {
    node.blocks[at] = { id: c.id, key: c.key };
    this.summary.chunks++;
    const hex = c.id.toString('hex');
    if (this.#seen.has(hex)) return;
    this.#seen.add(hex);
    const store = this.#opts.store;
    await this.#uploads.add(async () => {
      try {
        if (await store.has(c.id)) return;
        await store.put(c.id, c.data);
      } catch (e) {
        throw new TreeError(`${label}: ${(e as Error).message.split('\n')[0]}`);
      }
      this.summary.uploaded++;
    });
  }

  /** A hard link: `node` gets `first`'s blocks once they are all known (rfs has no link table). */
  linkTo(node: FlWriterNode, first: FlWriterNode): void {
    this.#links.push([node, first]);
    this.#fileDone(node.meta.size);
  }

  #fileDone(bytes: number): void {
    this.#doneBytes += bytes;
    this.#opts.progress?.(++this.#doneFiles, this.#doneBytes, this.input?.());
  }

  /** Waits for the work already started, failures ignored: call it before giving up on a pack. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    await this.#uploads.drain().catch(() => undefined);
  }

  /** Waits for every chunk, then writes the .fl (under a temporary name, renamed into place). */
  async finish(outFile: string): Promise<PackSummary> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    if (this.#failure) {
      await this.settle();
      throw this.#failure;
    }
    await this.#uploads.drain();
    for (const [node, first] of this.#links) node.blocks.push(...first.blocks);
    // the .fl names the chunks: they are on disk before it is
    await this.#opts.store.sync();
    this.writer.write(outFile);
    return this.summary;
  }
}
