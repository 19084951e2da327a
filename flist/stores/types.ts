// The one interface every chunk store (dir, http, zdb, the router, the
// cache) answers to. Shared with flist/chunk.ts's callers: ids are raw
// 32-byte Buffers, data is ciphertext; the pipeline knows nothing of stores.
export interface ChunkStore {
  readonly url: string /* password stripped */;
  get(id: Buffer): Promise<Buffer | undefined> /* undefined = missing */;
  put(id: Buffer, data: Buffer): Promise<void>;
  has(id: Buffer): Promise<boolean>;
  /**
   * Makes every put that has resolved durable on the store's side, where the
   * client can ask for it (dir: the filesystem is synced); a writer calls it
   * before it records the chunks anywhere (the .fl).
   */
  sync(): Promise<void>;
  close(): Promise<void>;
  /**
   * Where the chunk would be as a file on this machine, for stores that keep
   * chunks as files (dir, the cache): a reader may read it there itself (on
   * a worker thread) and call get() only when the file is not there.
   */
  localPath?(id: Buffer): string | undefined;
  /**
   * For a store whose put() only writes files `<root>/<h[0:2]>/<h>` (dir):
   * the folders a put writes to, by the id's first byte. A writer may write
   * a chunk there itself (temporary name, then rename; sync() still makes it
   * durable) instead of calling put(). Undefined when a put may go elsewhere.
   */
  chunkDirs?(): ChunkDir[] | undefined;
}

/** Chunks whose id starts with a byte in start..end (inclusive) are files under `root`; `url` names the store in messages. */
export interface ChunkDir {
  start: number;
  end: number;
  root: string;
  url: string;
}
