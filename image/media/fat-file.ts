// Writes a FAT file system (fat.ts) into a file at an offset: the metadata
// blocks, then each source file's bytes at its clusters.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { fatLayout } from './fat.ts';
import type { FatOptions } from './fat.ts';

export interface FatSource {
  path: string;
  data: Uint8Array;
}

/** Lays out `files` and writes them at `base` in `fh`; returns the file system's size in bytes. */
export async function writeFat(fh: FileHandle, base: number, files: readonly FatSource[], opts: FatOptions = {}): Promise<number> {
  const layout = fatLayout(files.map((f) => ({ path: f.path, size: f.data.length })), opts);
  // The file ends where the file system does, even when its last clusters are free.
  await fh.truncate(base + layout.size);
  for (const m of layout.metadata) await fh.write(m.data, 0, m.data.length, base + m.offset);
  for (const [i, f] of files.entries()) if (f.data.length > 0) await fh.write(f.data, 0, f.data.length, base + layout.fileOffsets[i]);
  return layout.size;
}

/** A FAT file system image file holding `files`. */
export async function writeFatFile(outPath: string, files: readonly FatSource[], opts: FatOptions = {}): Promise<number> {
  const fh = await open(outPath, 'w');
  try {
    return await writeFat(fh, 0, files, opts);
  } finally {
    await fh.close();
  }
}
