// Chunks for the node-facing port, from the server's chunk store, as store
// entries the artifact code serves (validators, ranges, back-pressure).
// A dir:// store's chunk is a file (kept open a moment for the next
// fetches, open-file-cache.ts), sent like any store file (sendfile, or the
// reused copy buffers); other stores answer a whole Buffer, held under a
// byte budget until its download ends, so a crowd of fetches (or one client
// pipelining hundreds) waits instead of filling the heap. Those chunks are
// also kept in a bounded LRU, and a chunk being fetched is fetched once for
// every client asking for it meanwhile.
import path from 'node:path';
import type { ChunkStore } from '../../flist/stores/types.ts';
import { DirStore, dirChunkPath } from '../../flist/stores/dir.ts';
import { MountedStore, StoreNotFoundError } from '../store.ts';
import type { StoreEntry } from '../store.ts';
import { WaitBudget } from './wait-budget.ts';
import { OpenFileCache } from '../open-file-cache.ts';
import { ChunkLru } from './chunk-lru.ts';

/** The largest chunk served: a 512 KiB chunk Snappy could not shrink, with its overhead, fits (the http store's own bound). */
export const MAX_CHUNK_BYTES = 1 << 20;
/** Default memory for chunks held whole at once (non-dir stores). */
export const CHUNK_MEMORY_BYTES = 64 * MAX_CHUNK_BYTES;
/** Default size of the LRU of chunks from non-dir stores. */
export const CHUNK_CACHE_BYTES = 32 * MAX_CHUNK_BYTES;
/** How long a fetch waits for that memory before the client is told to come back. */
export const CHUNK_WAIT_MS = 10_000;

const CHUNK_HEX = /^[0-9a-f]{64}$/;

/** The id in `<h[0:2]>/<h>` or `<h>` (what follows /chunks/), or undefined when malformed: 64 lowercase hex, the prefix its first two. */
export function chunkHexFromPath(rest: string): string | undefined {
  const parts = rest.split('/');
  const hex = parts[parts.length - 1];
  if (parts.length > 2 || !CHUNK_HEX.test(hex)) return undefined;
  if (parts.length === 2 && parts[0] !== hex.slice(0, 2)) return undefined;
  return hex;
}

/** No memory came free within the wait: the client should retry (503). */
export class ChunkBusyError extends Error {
  override name = 'ChunkBusyError';
}

/** The store answered more bytes than any chunk can be (502). */
export class ChunkTooLargeError extends Error {
  override name = 'ChunkTooLargeError';
}

export interface ChunkSourceOptions {
  /** Chunks held whole by downloads at once (non-dir stores). */
  memoryBytes?: number;
  /** The LRU of chunks from non-dir stores; 0: none. */
  cacheBytes?: number;
  waitMs?: number;
}

export class ChunkSource {
  readonly store: ChunkStore;
  private readonly files: OpenFileCache | undefined;
  private readonly root: string;
  private readonly memory: WaitBudget;
  private readonly waitMs: number;
  private readonly cache: ChunkLru;
  private readonly fetching = new Map<string, Promise<Buffer | undefined>>();

  constructor(store: ChunkStore, opts: ChunkSourceOptions = {}) {
    this.store = store;
    this.root = store instanceof DirStore ? store.root : '';
    this.files = store instanceof DirStore ? new OpenFileCache(new MountedStore([{ prefix: '', dir: store.root }])) : undefined;
    this.memory = new WaitBudget(opts.memoryBytes ?? CHUNK_MEMORY_BYTES);
    this.waitMs = opts.waitMs ?? CHUNK_WAIT_MS;
    this.cache = new ChunkLru(opts.cacheBytes ?? CHUNK_CACHE_BYTES);
  }

  /**
   * The chunk `hex` (already checked), undefined when the store lacks it.
   * Throws what the store throws, ChunkBusyError, ChunkTooLargeError;
   * `signal` aborts a wait for memory (the client went away).
   */
  async open(hex: string, signal?: AbortSignal): Promise<StoreEntry | undefined> {
    if (this.files) return this.openFile(this.files, hex);
    // The budget counts what downloads hold, cached or not: a chunk evicted while a slow client still reads it stays counted.
    const cached = this.cache.get(hex);
    const reserve = cached?.length ?? MAX_CHUNK_BYTES;
    if (!(await this.memory.take(reserve, this.waitMs, signal))) {
      if (signal?.aborted) return undefined;
      throw new ChunkBusyError(`no memory for chunk ${hex} within ${this.waitMs} ms`);
    }
    if (cached) return bufferEntry(hex, cached, () => this.memory.give(cached.length));
    let data: Buffer | undefined;
    try {
      data = await this.fetch(hex);
    } catch (e) {
      this.memory.give(MAX_CHUNK_BYTES);
      throw e;
    }
    if (data === undefined || data.length > MAX_CHUNK_BYTES) {
      this.memory.give(MAX_CHUNK_BYTES);
      if (data === undefined) return undefined;
      throw new ChunkTooLargeError(`chunk ${hex} is ${data.length} bytes, more than a chunk can be (${MAX_CHUNK_BYTES})`);
    }
    this.memory.give(MAX_CHUNK_BYTES - data.length);
    this.cache.add(hex, data);
    return bufferEntry(hex, data, () => this.memory.give(data.length));
  }

  /** One store fetch per chunk however many clients ask for it at once. */
  private fetch(hex: string): Promise<Buffer | undefined> {
    let pending = this.fetching.get(hex);
    if (!pending) {
      pending = this.store.get(Buffer.from(hex, 'hex')).finally(() => this.fetching.delete(hex));
      this.fetching.set(hex, pending);
    }
    return pending;
  }

  private async openFile(files: OpenFileCache, hex: string): Promise<StoreEntry | undefined> {
    let entry: StoreEntry;
    try {
      entry = await files.open(path.relative(this.root, dirChunkPath(this.root, hex)));
    } catch (e) {
      if (e instanceof StoreNotFoundError) return undefined;
      throw e;
    }
    // The id is the strongest validator there is: the bytes are its hash.
    return { ...entry, path: hex, etag: `"${hex}"` };
  }
}

/** A chunk held in memory; its budget goes back at close (after the last write was flushed, or the client went). */
function bufferEntry(hex: string, data: Buffer, release: () => void): StoreEntry {
  let held: Buffer | undefined = data;
  const bytes = () => held ?? Buffer.alloc(0);
  return {
    path: hex,
    size: data.length,
    mtime: new Date(0),
    etag: `"${hex}"`,
    read: async (offset, length) => Buffer.from(bytes().subarray(offset, offset + length)),
    readInto: async (buf, position) => (position >= bytes().length ? 0 : bytes().copy(buf, 0, position, position + buf.length)),
    close: async () => {
      if (held === undefined) return;
      held = undefined;
      release();
    },
  };
}
