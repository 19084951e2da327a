// Reading a file's contents back out of the chunk stores: the stores an .fl
// names (or those given instead), an optional local cache in front, and the
// chunks of one entry fetched DEFAULT_TRANSFERS at a time (shared by every
// file being read), decoded on the pool and checked (id and key hashes).
import type { ChunkPool } from './chunk-pool.ts';
import { FlistError } from './errors.ts';
import type { FlEntry, FlReader } from './fl-file.ts';
import { orderedWindow } from './ordered.ts';
import { CachedStore, ChunkCache } from './stores/cache.ts';
import { DEFAULT_TRANSFERS, Semaphore } from './stores/limit.ts';
import { openRouter, parseStoreArg } from './stores/router.ts';
import type { ChunkStore } from './stores/types.ts';
import { ChunkPathError, MissingChunkError } from './tree-errors.ts';

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

export class ChunkReader {
  readonly #fl: FlReader;
  readonly #store: ChunkStore;
  readonly #pool: ChunkPool;
  readonly #transfers = new Semaphore(DEFAULT_TRANSFERS);

  constructor(fl: FlReader, store: ChunkStore, pool: ChunkPool) {
    this.#fl = fl;
    this.#store = store;
    this.#pool = pool;
  }

  /** The plain chunks of a file entry, in order; refusals name the .fl, the path and the chunk id. */
  chunks(entry: FlEntry): AsyncGenerator<Buffer> {
    return orderedWindow(entry.blocks, DEFAULT_TRANSFERS, async (b) => {
      const hex = b.id.toString('hex');
      let data: Buffer | undefined;
      try {
        data = await this.#transfers.run(() => this.#store.get(b.id));
      } catch (e) {
        throw new ChunkPathError(this.#fl.file, entry.path, hex, e as Error);
      }
      if (data === undefined) throw new MissingChunkError(this.#fl.file, entry.path, hex);
      try {
        return await this.#pool.decode(b.id, b.key, data);
      } catch (e) {
        throw new ChunkPathError(this.#fl.file, entry.path, hex, e as Error);
      }
    });
  }
}
