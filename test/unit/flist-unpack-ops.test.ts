import test from 'ava';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHUNK_SIZE, createChunkCodec } from '../../flist/chunk.ts';
import { ChunkPool } from '../../flist/chunk-pool.ts';
import { UnpackOps } from '../../flist/unpack-ops.ts';

const meta = (final: string) => ({ mode: 0o100751, uid: 0, gid: 0, mtime: 1_600_000_000, chown: false, final });

test('a file op reads a local chunk, writes under the temp name, sets mode and time, then renames', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-unpack-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const codec = await createChunkCodec();
  const plain = Buffer.from('hello from a chunk\n'.repeat(100));
  const c = codec.encode(plain);
  await writeFile(path.join(dir, 'chunk'), c.data);
  const ops = new UnpackOps(codec);
  const final = path.join(dir, 'out');
  const r = ops.run({ op: 'file', chunks: [{ id: c.id, key: c.key, path: path.join(dir, 'chunk') }], file: path.join(dir, '.out.tmp'), create: true, finish: meta(final) });
  t.deepEqual(r, { ok: true, bytes: plain.length });
  t.true((await readFile(final)).equals(plain));
  const st = await stat(final);
  t.is(st.mode & 0o7777, 0o751);
  t.is(st.mtimeMs, 1_600_000_000_000);
  t.deepEqual((await readdir(dir)).sort(), ['chunk', 'out']);
});

test('a missing local chunk answers `missing` before any file exists; a bad chunk fails naming its index, leaving nothing', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-unpack-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const codec = await createChunkCodec();
  const a = codec.encode(Buffer.from('first'));
  const b = codec.encode(Buffer.from('second'));
  await writeFile(path.join(dir, 'a'), a.data);
  const ops = new UnpackOps(codec);
  const tmp = path.join(dir, '.out.tmp');
  const chunks = [
    { id: a.id, key: a.key, path: path.join(dir, 'a') },
    { id: b.id, key: b.key, path: path.join(dir, 'b') },
  ];
  t.deepEqual(ops.run({ op: 'file', chunks, file: tmp, create: true, finish: meta(path.join(dir, 'out')) }), { missing: 1 });
  const bad = Buffer.from(b.data);
  bad[0] ^= 1;
  const r = ops.run({ op: 'file', chunks: [chunks[0], { id: b.id, key: b.key, data: bad }], file: tmp, create: true, finish: meta(path.join(dir, 'out')) });
  t.true('error' in r && r.chunk === 1 && r.error.name === 'ChunkIdMismatchError', JSON.stringify(r));
  t.deepEqual(await readdir(dir), ['a']);
});

test('a chunk written at a computed offset must decode to the expected length, else nothing is written', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-unpack-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const codec = await createChunkCodec();
  const short = codec.encode(Buffer.alloc(1000, 1));
  const ops = new UnpackOps(codec);
  const file = path.join(dir, 'f');
  await writeFile(file, '');
  t.deepEqual(ops.run({ op: 'file', chunks: [{ ...short }], file, offset: CHUNK_SIZE, expect: CHUNK_SIZE }), { uneven: 1000 });
  t.is((await stat(file)).size, 0);
  t.deepEqual(ops.run({ op: 'file', chunks: [{ ...short }], file, offset: CHUNK_SIZE }), { ok: true, bytes: 1000 });
  t.is((await stat(file)).size, CHUNK_SIZE + 1000);
});

test('the pool runs queued unpack ops in batches and answers each op', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-unpack-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pool = await ChunkPool.create({ threads: 1 });
  t.teardown(() => pool.close());
  const codec = await createChunkCodec();
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => {
      const c = codec.encode(Buffer.from(`file ${i}`));
      // every fifth a damaged chunk: its failure stays its own
      const data = i % 5 === 0 ? Buffer.concat([c.data, Buffer.from('x')]) : c.data;
      return pool.unpack({ op: 'file', chunks: [{ id: c.id, key: c.key, data }], file: path.join(dir, `.${i}.tmp`), create: true, finish: meta(path.join(dir, String(i))) });
    }),
  );
  results.forEach((r, i) => t.is('ok' in r, i % 5 !== 0, `op ${i}: ${JSON.stringify(r)}`));
  const names = (await readdir(dir)).sort((x, y) => Number(x) - Number(y));
  t.deepEqual(names, Array.from({ length: 40 }, (_, i) => String(i)).filter((_, i) => i % 5 !== 0));
  t.is(await readFile(path.join(dir, '7'), 'utf8'), 'file 7');
});

test('modes the umask would cut (0666, 0777) and set-id modes come out whole, as the flist says', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-unpack-ops-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const codec = await createChunkCodec();
  const c = codec.encode(Buffer.from('x'));
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const ops = new UnpackOps(codec);
  for (const mode of [0o644, 0o666, 0o777, 0o4755, 0o2711, 0o400]) {
    const final = path.join(dir, `m${mode.toString(8)}`);
    const r = ops.run({ op: 'file', chunks: [{ ...c }], file: `${final}.tmp`, create: true, finish: { ...meta(final), mode: 0o100000 | mode } });
    t.deepEqual(r, { ok: true, bytes: 1 });
    t.is((await stat(final)).mode & 0o7777, mode, mode.toString(8));
  }
});
