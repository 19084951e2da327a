// One chunk of a file entry from a store, for both flist formats' readers:
// fetched under the reader's transfer limit, and a failure or a miss named
// by the flist, the entry's path and the chunk id.
import type { FlEntry } from './fl-file.ts';
import type { Semaphore } from './stores/limit.ts';
import type { ChunkStore } from './stores/types.ts';
import { ChunkPathError, MissingChunkError } from './tree-errors.ts';

export async function fetchChunk(store: ChunkStore, transfers: Semaphore, file: string, entry: FlEntry, id: Buffer): Promise<Buffer> {
  let data: Buffer | undefined;
  try {
    data = await transfers.run(() => store.get(id));
  } catch (e) {
    throw new ChunkPathError(file, entry.path, id.toString('hex'), e as Error);
  }
  if (data === undefined) throw new MissingChunkError(file, entry.path, id.toString('hex'));
  return data;
}
