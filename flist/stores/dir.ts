// dir:// — chunks as files under a folder, <root>/<hex[0:2]>/<hex>, as rfs
// lays them out. Writes are atomic (temp name, then rename).
import path from 'node:path';
import { writeFileAtomic, readIfExists, isFile } from './atomic-file.ts';
import { chunkHex } from './chunk-id.ts';
import { StoreError } from './errors.ts';
import type { ChunkDir, ChunkStore } from './types.ts';
import { runCommand } from '../../lib/process.ts';

export function dirChunkPath(root: string, hex: string): string {
  return path.join(root, hex.slice(0, 2), hex);
}

export class DirStore implements ChunkStore {
  readonly url: string;
  readonly root: string;

  constructor(url: string, root: string) {
    this.url = url;
    this.root = root;
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    try {
      return await readIfExists(dirChunkPath(this.root, hex));
    } catch (e) {
      throw this.failure('reading', hex, e);
    }
  }

  localPath(id: Buffer): string {
    return dirChunkPath(this.root, chunkHex(id));
  }

  chunkDirs(): ChunkDir[] {
    return [{ start: 0, end: 255, root: this.root, url: this.url }];
  }

  async put(id: Buffer, data: Buffer): Promise<void> {
    const hex = chunkHex(id);
    try {
      await writeFileAtomic(dirChunkPath(this.root, hex), data);
    } catch (e) {
      throw this.failure('writing', hex, e);
    }
  }

  /** syncfs(2) of the store's filesystem (coreutils `sync -f`): one call for every chunk written, instead of an fsync per chunk. */
  async sync(): Promise<void> {
    const r = await runCommand('sync', ['-f', this.root]);
    if (r.code !== 0) throw new StoreError(this.url, `syncing ${this.root} failed: ${r.stderr.trim() || `sync exited ${r.code}`}`);
  }

  async has(id: Buffer): Promise<boolean> {
    const hex = chunkHex(id);
    try {
      return await isFile(dirChunkPath(this.root, hex));
    } catch (e) {
      throw this.failure('looking for', hex, e);
    }
  }

  async close(): Promise<void> {}

  private failure(doing: string, hex: string, e: unknown): StoreError {
    const err = e as NodeJS.ErrnoException;
    return new StoreError(this.url, `${doing} chunk ${hex} failed: ${err.code ?? err.message} (${dirChunkPath(this.root, hex)})`);
  }
}
