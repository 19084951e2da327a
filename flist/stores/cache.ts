// The local chunk cache, laid out as <cache>/<h[0:2]>/<h[2:4]>/<h> (rfs's
// layout), written atomically, and a store that reads it before the one it
// wraps (the router) and keeps what it fetched. Given the pipeline's hash
// check, a damaged cached chunk is fetched again and replaced.
import path from 'node:path';
import { isFile, readIfExists, writeFileAtomic } from './atomic-file.ts';
import { chunkHex } from './chunk-id.ts';
import { StoreError } from './errors.ts';
import type { ChunkCheck } from './router.ts';
import type { ChunkStore } from './types.ts';

export function cachePath(root: string, hex: string): string {
  return path.join(root, hex.slice(0, 2), hex.slice(2, 4), hex);
}

export class ChunkCache implements ChunkStore {
  readonly url: string;
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    this.url = `cache ${root}`;
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    return this.io('reading', hex, () => readIfExists(cachePath(this.root, hex)));
  }

  localPath(id: Buffer): string {
    return cachePath(this.root, chunkHex(id));
  }

  async has(id: Buffer): Promise<boolean> {
    const hex = chunkHex(id);
    return this.io('looking for', hex, () => isFile(cachePath(this.root, hex)));
  }

  async put(id: Buffer, data: Buffer): Promise<void> {
    const hex = chunkHex(id);
    await this.io('writing', hex, () => writeFileAtomic(cachePath(this.root, hex), data));
  }

  /** A cache can be fetched again: nothing to make durable. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {}

  private async io<T>(doing: string, hex: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new StoreError(this.url, `${doing} chunk ${hex} failed: ${err.code ?? err.message}`);
    }
  }
}

/** Reads the cache first; a chunk fetched from `inner` is kept in the cache. Writes go to `inner` only. */
export class CachedStore implements ChunkStore {
  readonly url: string;
  private readonly cache: ChunkCache;
  private readonly inner: ChunkStore;
  private readonly check: ChunkCheck | undefined;

  constructor(cache: ChunkCache, inner: ChunkStore, check?: ChunkCheck) {
    this.cache = cache;
    this.inner = inner;
    this.check = check;
    this.url = inner.url;
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const cached = await this.cache.get(id);
    if (cached && (!this.check || (await this.check(id, cached)))) return cached;
    const data = await this.inner.get(id);
    if (data) await this.cache.put(id, data);
    return data;
  }

  /** The cached copy's path: when it is missing, get() fetches and keeps it. Not with a check, which get() runs on cached data. */
  localPath(id: Buffer): string | undefined {
    return this.check ? undefined : this.cache.localPath(id);
  }

  async has(id: Buffer): Promise<boolean> {
    return (await this.cache.has(id)) || this.inner.has(id);
  }

  async put(id: Buffer, data: Buffer): Promise<void> {
    await this.inner.put(id, data);
  }

  async sync(): Promise<void> {
    await this.inner.sync();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
