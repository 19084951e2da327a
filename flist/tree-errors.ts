// Refusals of the tree commands (pack, unpack, cat, verify): each names the
// .fl file, the path inside the tree and, for a chunk, its id in hex, on one line.
import { FlistError } from './errors.ts';

/** A chunk no store has. */
export class MissingChunkError extends FlistError {
  override name = 'MissingChunkError';
  constructor(file: string, path: string, id: string) {
    super(`${file}: ${path}: chunk ${id} is missing from every store`);
  }
}

/** A chunk-level failure (bad hash, store down) put in the context of the file and path it belongs to. */
export class ChunkPathError extends FlistError {
  override name = 'ChunkPathError';
  constructor(file: string, path: string, id: string, cause: Error) {
    const why = cause.message.split('\n')[0];
    super(`${file}: ${path}: ${why.includes(id) ? why : `chunk ${id}: ${why}`}`);
  }
}

/** A source tree entry that cannot be packed, or a path that is not in the flist. */
export class TreeError extends FlistError {
  override name = 'TreeError';
}
