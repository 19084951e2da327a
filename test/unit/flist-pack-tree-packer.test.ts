import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createChunkCodec, type EncodedChunk } from '../../flist/chunk.ts';
import type { ChunkPool } from '../../flist/chunk-pool.ts';
import { FlReader } from '../../flist/fl-file.ts';
import type { ChunkStore } from '../../flist/stores/types.ts';
import { TreePacker } from '../../flist/tree-packer.ts';

class MemoryStore implements ChunkStore {
  readonly url = 'memory://';
  readonly chunks = new Map<string, Buffer>();
  failPuts = false;
  async get(id: Buffer) {
    return this.chunks.get(id.toString('hex'));
  }
  async put(id: Buffer, data: Buffer) {
    if (this.failPuts) throw new Error('store refused the write');
    this.chunks.set(id.toString('hex'), data);
  }
  async has(id: Buffer) {
    return this.chunks.has(id.toString('hex'));
  }
  async sync() {}
  async close() {}
}

/** A pool whose encodings finish in reverse order of submission (later pieces first). */
async function reversingPool(capacity: number): Promise<ChunkPool> {
  const codec = await createChunkCodec();
  let n = 0;
  return {
    capacity,
    encode: async (plain: Uint8Array): Promise<EncodedChunk> => {
      const delay = 5 * (capacity - (n++ % capacity));
      await new Promise((r) => setTimeout(r, delay));
      return codec.encode(plain);
    },
  } as unknown as ChunkPool;
}

const DIR = { mode: 0o040755, uid: 0, gid: 0, size: 0, mtime: 0, ctime: 0, rdev: 0 };

async function* piecesOf(bufs: Buffer[]): AsyncGenerator<Buffer> {
  yield* bufs;
}

test('blocks stay in file order whatever order the encodings finish in', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-tree-packer-'));
  try {
    const codec = await createChunkCodec();
    const pieces = Array.from({ length: 8 }, () => randomBytes(1000));
    const store = new MemoryStore();
    const packer = new TreePacker(DIR, { pool: await reversingPool(8), store, routes: [{ start: 0, end: 255, url: 'dir:///x' }] });
    const node = packer.add(packer.root, 'f', { ...DIR, mode: 0o100644, size: 8000 });
    await packer.addFile(node, piecesOf(pieces), 'f');
    const summary = await packer.finish(path.join(dir, 'x.fl'));
    t.like(summary, { entries: 2, files: 1, bytes: 8000, chunks: 8, uploaded: 8 });
    const fl = FlReader.open(path.join(dir, 'x.fl'));
    const entry = [...fl.walk()].find((e) => e.path === '/f')!;
    fl.close();
    t.deepEqual(
      entry.blocks.map((b) => b.key.toString('hex')),
      pieces.map((p) => codec.hash(p).toString('hex')),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store failure fails the pack with the file named, and no .fl is written', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-tree-packer-'));
  try {
    const store = new MemoryStore();
    store.failPuts = true;
    // capacity 8: addFile returns before any encoding is done, the failure comes up in finish()
    const packer = new TreePacker(DIR, { pool: await reversingPool(8), store, routes: [] });
    const node = packer.add(packer.root, 'f', { ...DIR, mode: 0o100644, size: 3000 });
    const out = path.join(dir, 'x.fl');
    await packer.addFile(node, piecesOf([randomBytes(1000), randomBytes(1000), randomBytes(1000)]), 'src/f');
    await t.throwsAsync(packer.finish(out), { message: 'src/f: store refused the write' });
    t.throws(() => FlReader.open(out), { message: /cannot open/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
