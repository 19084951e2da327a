// Reading a legacy file's contents: the store its `backend` metadata names
// (a zdb or redis, raw 16-byte keys) unless --store says otherwise, an
// optional local cache in front, and each file's chunks fetched
// DEFAULT_TRANSFERS at a time, checked and decoded (XXTEA is cheap next to
// the network: it runs on the calling thread).
import path from 'node:path';
import { fetchChunk } from '../fetch-chunk.ts';
import { orderedWindow } from '../ordered.ts';
import type { FlEntry } from '../fl-file.ts';
import { FlistError } from '../errors.ts';
import { readIfExists } from '../stores/atomic-file.ts';
import { CachedStore, ChunkCache } from '../stores/cache.ts';
import { chunkHex } from '../stores/chunk-id.ts';
import { DirStore } from '../stores/dir.ts';
import { StoreError } from '../stores/errors.ts';
import { DEFAULT_TRANSFERS, Semaphore } from '../stores/limit.ts';
import { openStore } from '../stores/open.ts';
import { ChunkRouter, parseStoreArg, type ChunkCheck, type RouteSpec } from '../stores/router.ts';
import type { ChunkStore } from '../stores/types.ts';
import { parseStoreUrl } from '../stores/url.ts';
import { ChunkPathError } from '../tree-errors.ts';
import type { LegacyChunkCodec } from './chunk.ts';
import { createBlake2b } from './hash.ts';
import type { LegacyBackend, LegacyFlist } from './reader.ts';

/**
 * dir:// for legacy chunks: a folder of files named by the hex hash (how one
 * dumps a backend), or rfs's <hex[0:2]>/<hex> layout.
 */
export class LegacyDirStore extends DirStore {
  override async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    let flat: Buffer | undefined;
    try {
      flat = await readIfExists(path.join(this.root, hex));
    } catch (e) {
      throw new StoreError(this.url, `reading chunk ${hex} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return flat ?? super.get(id);
  }
}

/** The zdb:// URL of a backend from the metadata (the password goes with it, as 0-flist uses it). */
export function backendUrl(b: LegacyBackend): string {
  const host = b.host.includes(':') ? `[${b.host}]` : b.host;
  const auth = b.password !== undefined ? `:${encodeURIComponent(b.password)}@` : '';
  return `zdb://${auth}${host}:${b.port}${b.namespace !== undefined ? `/${encodeURIComponent(b.namespace)}` : ''}`;
}

export interface LegacyStoreOptions {
  /** --store arguments ([xx-xx=]URL); without them, the backend in the metadata. */
  stores?: string[];
  cache?: string;
}

/** The store to read a legacy flist's chunks from; a copy that fails its hash is read from the next store. */
export async function openLegacyStore(flist: LegacyFlist, opts: LegacyStoreOptions): Promise<ChunkStore> {
  let specs: RouteSpec[];
  if (opts.stores && opts.stores.length > 0) specs = opts.stores.map(parseStoreArg);
  else {
    const backend = flist.backend();
    if (backend === undefined) throw new FlistError(`${flist.file}: the flist names no backend; give one with --store zdb://host:port[/namespace] or dir:///path`);
    specs = [{ start: 0, end: 255, url: backendUrl(backend) }];
  }
  const blake = await createBlake2b(128);
  const check: ChunkCheck = (id, data) => blake(data).equals(id);
  const byUrl = new Map<string, ChunkStore>();
  const routes = specs.map((s) => {
    let store = byUrl.get(s.url);
    if (!store) {
      const desc = parseStoreUrl(s.url);
      store = desc.kind === 'dir' ? new LegacyDirStore(desc.url, desc.path) : openStore(desc);
      byUrl.set(s.url, store);
    }
    return { start: s.start, end: s.end, store };
  });
  const router = new ChunkRouter(routes, { check });
  return opts.cache ? new CachedStore(new ChunkCache(opts.cache), router, check) : router;
}

export class LegacyChunkReader {
  readonly #file: string;
  readonly #store: ChunkStore;
  readonly #codec: LegacyChunkCodec;
  readonly #transfers = new Semaphore(DEFAULT_TRANSFERS);

  constructor(file: string, store: ChunkStore, codec: LegacyChunkCodec) {
    this.#file = file;
    this.#store = store;
    this.#codec = codec;
  }

  /** The plain chunks of a file entry, in order; refusals name the .flist, the path and the chunk hash. */
  chunks(entry: FlEntry): AsyncGenerator<Buffer> {
    return orderedWindow(entry.blocks, DEFAULT_TRANSFERS, async (b) => {
      const data = await fetchChunk(this.#store, this.#transfers, this.#file, entry, b.id);
      try {
        return this.#codec.decode(b.id, b.key, data);
      } catch (e) {
        throw new ChunkPathError(this.#file, entry.path, b.id.toString('hex'), e as Error);
      }
    });
  }
}
