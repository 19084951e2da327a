// The s3:// store, its client library loaded on first use: the AWS SDK is
// tens of megabytes, and a program that never opens an s3:// store (the
// node image's `zeroboot flist unpack`, image/node-runtime.ts) need not
// load or carry it.
import type { S3StoreOptions } from './s3.ts';
import type { ChunkStore } from './types.ts';
import type { S3StoreUrl } from './url.ts';

export class LazyS3Store implements ChunkStore {
  readonly url: string;
  readonly #desc: S3StoreUrl;
  readonly #opts: S3StoreOptions | undefined;
  #store: Promise<ChunkStore> | undefined;

  constructor(desc: S3StoreUrl, opts?: S3StoreOptions) {
    this.url = desc.url;
    this.#desc = desc;
    this.#opts = opts;
  }

  #open(): Promise<ChunkStore> {
    this.#store ??= import('./s3.ts').then(({ S3Store }) => new S3Store(this.#desc, this.#opts));
    return this.#store;
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    return (await this.#open()).get(id);
  }

  async put(id: Buffer, data: Buffer): Promise<void> {
    return (await this.#open()).put(id, data);
  }

  async has(id: Buffer): Promise<boolean> {
    return (await this.#open()).has(id);
  }

  async sync(): Promise<void> {
    if (this.#store) await (await this.#store).sync();
  }

  async close(): Promise<void> {
    if (this.#store) await (await this.#store).close();
  }
}
