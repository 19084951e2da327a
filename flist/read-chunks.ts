// Reading a file's contents back out of the chunk stores: the stores an .fl
// names (or those given instead), an optional local cache in front, and the
// chunks of one entry fetched DEFAULT_TRANSFERS at a time (shared by every file being read),
// decoded on the pool and checked (id and key hashes). runFile() does the
// same for unpack and verify without the bytes coming back: the worker reads
// a chunk a store keeps as a local file itself (ChunkStore.localPath), and
// writes the file; only chunks of other stores (or missing locally) are
// fetched here and sent over.
import { availableParallelism } from 'node:os';
import { revive, type ChunkPool } from './chunk-pool.ts';
import { loadCodecAddon } from './codec-addon.ts';
import { FlistError } from './errors.ts';
import { fetchChunk } from './fetch-chunk.ts';
import type { FlBlock, FlEntry, FlReader } from './fl-file.ts';
import { orderedWindow } from './ordered.ts';
import { CachedStore, ChunkCache } from './stores/cache.ts';
import { DEFAULT_TRANSFERS, Semaphore } from './stores/limit.ts';
import { openRouter, parseStoreArg } from './stores/router.ts';
import type { ChunkStore } from './stores/types.ts';
import { ChunkPathError, TreeError } from './tree-errors.ts';
import type { ChunkSource, UnpackOp } from './unpack-ops.ts';
import { nativeUnpacker, type NativeUnpacker } from './unpack-native.ts';

export type FileOp = Omit<Extract<UnpackOp, { op: 'file' }>, 'op' | 'chunks'>;

export interface ReadStoreOptions {
  /** --store arguments; without them, the routes in the .fl. */
  stores?: string[];
  cache?: string;
}

/** The store to read an flist's chunks from. */
export function openReadStore(fl: FlReader, opts: ReadStoreOptions): ChunkStore {
  const specs = opts.stores && opts.stores.length > 0 ? opts.stores.map(parseStoreArg) : fl.routes();
  if (specs.length === 0) throw new FlistError(`${fl.file}: the flist names no chunk store; give one with --store URL`);
  const router = openRouter(specs);
  return opts.cache ? new CachedStore(new ChunkCache(opts.cache), router) : router;
}

/** Below this many bytes of files, one worker reads a tree: each costs about 0.1 s of CPU to start, more than a second one saves. */
export const SMALL_TREE_BYTES = 32 << 20;

/** Worker threads for reading `fl`: one for a small tree, else one per core. */
export function readThreads(fl: FlReader, cores = availableParallelism()): number {
  return fl.fileBytes() < SMALL_TREE_BYTES ? 1 : cores;
}

/** A pool, or how to start one when first needed (unpack from local chunks may need none). */
export type PoolSource = ChunkPool | (() => Promise<ChunkPool>);

export class ChunkReader {
  readonly #fl: FlReader;
  readonly #store: ChunkStore;
  readonly #poolSource: PoolSource;
  #pool: Promise<ChunkPool> | undefined;
  readonly #local: boolean;
  readonly #transfers = new Semaphore(DEFAULT_TRANSFERS);

  constructor(fl: FlReader, store: ChunkStore, pool: PoolSource) {
    this.#fl = fl;
    this.#store = store;
    this.#poolSource = pool;
    this.#local = typeof store.localPath === 'function';
  }

  #getPool(): Promise<ChunkPool> {
    const src = this.#poolSource;
    return (this.#pool ??= typeof src === 'function' ? src() : Promise.resolve(src));
  }

  /** The addon's whole-file writer and how many of its calls to run at once, when the store keeps chunks as local files. */
  nativeFiles(): { unpack: NativeUnpacker; parallel: number } | undefined {
    if (!this.#local) return undefined;
    const loaded = loadCodecAddon();
    const unpack = nativeUnpacker('addon' in loaded ? loaded.addon : undefined);
    return unpack === undefined ? undefined : { unpack, parallel: readThreads(this.#fl) };
  }

  /** The local chunk file of each block of `entry`, or undefined when one has none (the worker path then fetches it). */
  localPaths(entry: FlEntry): string[] | undefined {
    if (!this.#local) return undefined;
    const out: string[] = [];
    for (const b of entry.blocks) {
      let p: string | undefined;
      try {
        p = this.#store.localPath!(b.id);
      } catch {
        // the worker path reports it, naming the file and the chunk
        return undefined;
      }
      if (p === undefined) return undefined;
      out.push(p);
    }
    return out;
  }

  /** A store's chunk as fetched here; refusals name the .fl, the path and the chunk id. */
  #fetch(entry: FlEntry, b: FlBlock): Promise<Buffer> {
    return fetchChunk(this.#store, this.#transfers, this.#fl.file, entry, b.id);
  }

  async #source(entry: FlEntry, b: FlBlock): Promise<ChunkSource> {
    let path: string | undefined;
    try {
      path = this.#local ? this.#store.localPath!(b.id) : undefined;
    } catch (e) {
      throw new ChunkPathError(this.#fl.file, entry.path, b.id.toString('hex'), e as Error);
    }
    return path === undefined ? { id: b.id, key: b.key, data: await this.#fetch(entry, b) } : { id: b.id, key: b.key, path };
  }

  /**
   * Decodes `blocks` of `entry` on a worker and, as `out` says, writes them
   * there (see UnpackOp 'file'); resolves with the plain bytes, or with
   * `uneven` when they are not out.expect bytes (nothing written).
   */
  async runFile(entry: FlEntry, blocks: FlBlock[], out: FileOp): Promise<{ bytes: number } | { uneven: number }> {
    const chunks = await Promise.all(blocks.map((b) => this.#source(entry, b)));
    for (;;) {
      const r = await (await this.#getPool()).unpack({ op: 'file', chunks, ...out });
      if ('missing' in r) {
        const b = blocks[r.missing];
        chunks[r.missing] = { id: b.id, key: b.key, data: await this.#fetch(entry, b) };
      } else if ('error' in r) {
        if (r.chunk !== undefined) throw new ChunkPathError(this.#fl.file, entry.path, blocks[r.chunk].id.toString('hex'), revive(r.error));
        throw new TreeError(`${this.#fl.file}: ${entry.path}: ${r.error.message.split('\n')[0]}`);
      } else return r;
    }
  }

  /** Runs a folder or symlink op on a worker; a failure names the .fl and `what`. */
  async runTree(op: Exclude<UnpackOp, { op: 'file' }>, what: string): Promise<void> {
    const r = await (await this.#getPool()).unpack(op);
    if ('error' in r) throw new TreeError(`${this.#fl.file}: ${what}: ${r.error.message.split('\n')[0]}`);
  }

  /** The plain chunks of a file entry, in order; refusals name the .fl, the path and the chunk id. */
  chunks(entry: FlEntry): AsyncGenerator<Buffer> {
    return orderedWindow(entry.blocks, DEFAULT_TRANSFERS, async (b) => {
      const hex = b.id.toString('hex');
      const data = await this.#fetch(entry, b);
      try {
        return await (await this.#getPool()).decode(b.id, b.key, data);
      } catch (e) {
        throw new ChunkPathError(this.#fl.file, entry.path, hex, e as Error);
      }
    });
  }
}
