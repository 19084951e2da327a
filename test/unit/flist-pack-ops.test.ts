import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createChunkCodec } from '../../flist/chunk.ts';
import { PackOps } from '../../flist/pack-ops.ts';
import { DirStore } from '../../flist/stores/dir.ts';
import { ChunkRouter } from '../../flist/stores/router.ts';

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-pack-ops-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a piece read by path is encoded and written to the dir store under its id, no temp file left; again: not fresh', async (t) => {
  const dir = tempDir(t);
  const codec = await createChunkCodec();
  const bytes = randomBytes(3000);
  writeFileSync(path.join(dir, 'f'), bytes);
  const store = new DirStore('dir://' + path.join(dir, 'store'), path.join(dir, 'store'));
  const ops = new PackOps(codec);
  const op = { op: 'pack' as const, file: { path: path.join(dir, 'f'), offset: 1000, length: 2000 }, dirs: store.chunkDirs() };
  const r = ops.run(op);
  if (!('id' in r)) return t.fail(r.error.message);
  const want = codec.encode(bytes.subarray(1000));
  t.deepEqual(Buffer.from(r.id), want.id);
  t.is(r.data, undefined);
  t.true(r.fresh);
  t.deepEqual(readFileSync(store.localPath(want.id)), want.data);
  t.deepEqual(readdirSync(path.dirname(store.localPath(want.id))), [want.id.toString('hex')]);
  const again = ops.run(op);
  t.true('id' in again && !again.fresh);
});

test('a file that shrank is refused; no dir: the data comes back', async (t) => {
  const dir = tempDir(t);
  const ops = new PackOps(await createChunkCodec());
  writeFileSync(path.join(dir, 'f'), randomBytes(100));
  const short = ops.run({ op: 'pack', file: { path: path.join(dir, 'f'), offset: 0, length: 200 }, dirs: [] });
  t.true('error' in short && /shrank while being packed \(100 of 200 bytes\)/.test(short.error.message));
  const back = ops.run({ op: 'pack', plain: Buffer.from('hello'), dirs: [] });
  t.true('id' in back && back.data !== undefined && !back.fresh);
});

test('a router gives its dir stores cut to their ranges, and none when one store is not a dir', (t) => {
  const a = new DirStore('dir:///a', '/a');
  const b = new DirStore('dir:///b', '/b');
  const router = new ChunkRouter([
    { start: 0, end: 0x7f, store: a },
    { start: 0x40, end: 0xff, store: b },
  ]);
  t.deepEqual(router.chunkDirs(), [
    { start: 0, end: 0x7f, root: '/a', url: 'dir:///a' },
    { start: 0x40, end: 0xff, root: '/b', url: 'dir:///b' },
  ]);
  const remote = { url: 'zdb://x', get: async () => undefined, put: async () => {}, has: async () => false, sync: async () => {}, close: async () => {} };
  t.is(new ChunkRouter([{ start: 0, end: 0xff, store: a }, { start: 0, end: 0xff, store: remote }]).chunkDirs(), undefined);
});
