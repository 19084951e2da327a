// One store from one URL: the factory the CLI and the router use.
import { DirStore } from './dir.ts';
import { HttpStore, type HttpStoreOptions } from './http.ts';
import { LazyS3Store } from './lazy-s3.ts';
import type { S3StoreOptions } from './s3.ts';
import type { ChunkStore } from './types.ts';
import { parseStoreUrl, type StoreUrl } from './url.ts';
import { ZdbStore, type ZdbStoreOptions } from './zdb.ts';

export interface StoreOptions {
  http?: HttpStoreOptions;
  zdb?: ZdbStoreOptions;
  s3?: S3StoreOptions;
}

/** Opens (lazily: no I/O until the first operation) the store a URL names; throws StoreUrlError. */
export function openStore(url: string | StoreUrl, opts: StoreOptions = {}): ChunkStore {
  const desc = typeof url === 'string' ? parseStoreUrl(url) : url;
  switch (desc.kind) {
    case 'dir':
      return new DirStore(desc.url, desc.path);
    case 'http':
      return new HttpStore(desc, opts.http);
    case 'zdb':
      return new ZdbStore(desc, opts.zdb);
    case 's3':
      return new LazyS3Store(desc, opts.s3);
  }
}
