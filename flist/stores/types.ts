// The one interface every chunk store (dir, http, zdb, the router, the
// cache) answers to. Shared with flist/chunk.ts's callers: ids are raw
// 32-byte Buffers, data is ciphertext; the pipeline knows nothing of stores.
export interface ChunkStore {
  readonly url: string /* password stripped */;
  get(id: Buffer): Promise<Buffer | undefined> /* undefined = missing */;
  put(id: Buffer, data: Buffer): Promise<void>;
  has(id: Buffer): Promise<boolean>;
  close(): Promise<void>;
}
