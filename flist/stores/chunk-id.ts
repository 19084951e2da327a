// Chunk ids as the stores see them: raw bytes, written as lowercase hex in
// file names, paths and messages.
import { ChunkIdError } from './errors.ts';

/** 32 bytes for .fl chunks, 16 for legacy .flist ones; anything else is refused before it becomes a path. */
export function chunkHex(id: Buffer): string {
  if (!Buffer.isBuffer(id) || id.length < 1 || id.length > 64) throw new ChunkIdError(Buffer.isBuffer(id) ? id.length : -1);
  return id.toString('hex');
}
