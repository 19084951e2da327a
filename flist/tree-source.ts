// What unpack, cat and verify need from an flist, whichever its format: the
// tree (an .fl's FlReader, a legacy .flist's LegacyFlist) and a way to get a
// file's plain contents (ChunkReader, LegacyChunkReader).
import type { FlEntry } from './fl-file.ts';

export interface TreeSource {
  /** the flist's path, for messages */
  readonly file: string;
  walk(): Iterable<FlEntry>;
  lookup(path: string): FlEntry | undefined;
}

export interface ChunkSource {
  /** the plain chunks of a file entry, in order */
  chunks(entry: FlEntry): AsyncIterable<Buffer>;
}
