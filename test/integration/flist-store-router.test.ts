// Routing, replication and fallback over real dir stores (one of them
// broken: a file where its folder should be), and the local chunk cache.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CachedStore, ChunkCache } from '../../flist/stores/cache.ts';
import { dirChunkPath } from '../../flist/stores/dir.ts';
import { RouteError, RouteRangeError } from '../../flist/stores/errors.ts';
import { openStore } from '../../flist/stores/open.ts';
import { ChunkRouter, openRouter, parseStoreArg } from '../../flist/stores/router.ts';
import type { ChunkStore } from '../../flist/stores/types.ts';

async function temp(t: { teardown(f: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'flist-store-router-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

function idStarting(byte: number): Buffer {
  const id = randomBytes(32);
  id[0] = byte;
  return id;
}

async function exists(file: string): Promise<boolean> {
  return readFile(file).then(
    () => true,
    () => false,
  );
}

/** Makes a dir store unreadable: its folder moved away, a file in its place. */
async function breakStore(root: string): Promise<void> {
  await rename(root, `${root}.away`);
  await writeFile(root, 'not a folder');
}

/** A real store that counts which one was asked first. */
function counted(store: ChunkStore, firsts: Map<string, number>, asked: Set<string>): ChunkStore {
  return {
    url: store.url,
    get: async (id) => {
      const key = id.toString('hex');
      if (!asked.has(key)) {
        asked.add(key);
        firsts.set(store.url, (firsts.get(store.url) ?? 0) + 1);
      }
      return store.get(id);
    },
    put: (id, d) => store.put(id, d),
    has: (id) => store.has(id),
    sync: () => store.sync(),
    close: () => store.close(),
  };
}

test('writes go to every store whose inclusive range holds the first byte', async (t) => {
  const d = await temp(t);
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(d, n));
  const router = openRouter([parseStoreArg(`00-7f=dir://${a}`), parseStoreArg(`80-ff=dir://${b}`), parseStoreArg(`dir://${c}`)]);
  const cases: [number, string[], string[]][] = [
    [0x00, [a, c], [b]],
    [0x7f, [a, c], [b]],
    [0x80, [b, c], [a]],
    [0xff, [b, c], [a]],
  ];
  for (const [byte, holders, others] of cases) {
    const id = idStarting(byte);
    await router.put(id, randomBytes(100));
    for (const h of holders) t.true(await exists(dirChunkPath(h, id.toString('hex'))), `${byte} in ${h}`);
    for (const o of others) t.false(await exists(dirChunkPath(o, id.toString('hex'))), `${byte} not in ${o}`);
  }
  await router.close();
});

test('reads fall back when one replica is unreadable, whatever the order; reads spread over replicas', async (t) => {
  const d = await temp(t);
  const [a, b] = [path.join(d, 'a'), path.join(d, 'b')];
  const firsts = new Map<string, number>();
  const asked = new Set<string>();
  const router = new ChunkRouter([
    { start: 0, end: 255, store: counted(openStore(`dir://${a}`), firsts, asked) },
    { start: 0, end: 255, store: counted(openStore(`dir://${b}`), firsts, asked) },
  ]);
  const ids = Array.from({ length: 40 }, () => randomBytes(32));
  const datas = ids.map(() => randomBytes(1000));
  for (const [i, id] of ids.entries()) await router.put(id, datas[i]);
  for (const [i, id] of ids.entries()) t.true((await router.get(id))?.equals(datas[i]));
  t.true((firsts.get(`dir://${a}`) ?? 0) > 0 && (firsts.get(`dir://${b}`) ?? 0) > 0, `random order: ${JSON.stringify([...firsts])}`);

  await breakStore(a);
  for (const random of [() => 0, () => 0.999]) {
    const fixed = new ChunkRouter([
      { start: 0, end: 255, store: openStore(`dir://${a}`) },
      { start: 0, end: 255, store: openStore(`dir://${b}`) },
    ], { random });
    for (const [i, id] of ids.entries()) t.true((await fixed.get(id))?.equals(datas[i]));
    t.true(await fixed.has(ids[0]));
  }
});

test('a chunk missing from one replica is read from the other', async (t) => {
  const d = await temp(t);
  const [a, b] = [path.join(d, 'a'), path.join(d, 'b')];
  const id = randomBytes(32);
  const data = randomBytes(500);
  await openStore(`dir://${b}`).put(id, data);
  for (const random of [() => 0, () => 0.999]) {
    const router = openRouter([{ start: 0, end: 255, url: `dir://${a}` }, { start: 0, end: 255, url: `dir://${b}` }], { random });
    t.deepEqual(await router.get(id), data);
    t.true(await router.has(id));
  }
});

test('all replicas failing: one error naming the id and each store with its reason; missing everywhere is undefined', async (t) => {
  const d = await temp(t);
  const [a, b] = [path.join(d, 'a'), path.join(d, 'b')];
  const router = openRouter([{ start: 0, end: 255, url: `dir://${a}` }, { start: 0, end: 255, url: `dir://${b}` }]);
  const id = randomBytes(32);
  const hex = id.toString('hex');
  t.is(await router.get(id), undefined);
  t.false(await router.has(id));
  await writeFile(a, 'x');
  const e1 = await t.throwsAsync(() => router.get(id), { instanceOf: RouteError });
  t.regex(e1!.message, new RegExp(`^chunk ${hex}: no store could give it: `));
  t.true(e1!.message.includes(`store dir://${a}: reading chunk ${hex} failed: ENOTDIR`), e1!.message);
  t.true(e1!.message.includes(`store dir://${b}: missing`), e1!.message);
  await writeFile(b, 'x');
  const e2 = await t.throwsAsync(() => router.get(id), { instanceOf: RouteError });
  t.true(e2!.message.includes(`dir://${b}: reading chunk ${hex} failed: ENOTDIR`), e2!.message);
  t.false(e2!.message.includes('\n'));
});

test('a write that fails on one replica is an error naming it; the other replica still holds the chunk', async (t) => {
  const d = await temp(t);
  const [a, b] = [path.join(d, 'a'), path.join(d, 'b')];
  await writeFile(a, 'x');
  const router = openRouter([{ start: 0, end: 255, url: `dir://${a}` }, { start: 0, end: 255, url: `dir://${b}` }]);
  const id = randomBytes(32);
  const e = await t.throwsAsync(() => router.put(id, Buffer.from('data')), { instanceOf: RouteError, message: /not written to 1 of 2 stores: store dir:\/\/.*\/a: writing chunk/ });
  t.truthy(e);
  t.deepEqual(await openStore(`dir://${b}`).get(id), Buffer.from('data'));
});

test('ids outside every range, bad ranges and bad --store arguments are refused', async (t) => {
  const d = await temp(t);
  const router = openRouter([{ start: 0x10, end: 0x20, url: `dir://${d}` }]);
  await t.throwsAsync(() => router.get(idStarting(0x21)), { instanceOf: RouteError, message: /no store route covers ids starting with 21/ });
  await t.throwsAsync(() => router.put(idStarting(0x0f), Buffer.from('x')), { instanceOf: RouteError });
  t.throws(() => openRouter([{ start: 5, end: 4, url: `dir://${d}` }]), { instanceOf: RouteRangeError });
  t.throws(() => openRouter([{ start: 0, end: 256, url: `dir://${d}` }]), { instanceOf: RouteRangeError });
  t.throws(() => openRouter([]), { instanceOf: RouteRangeError });
  t.throws(() => parseStoreArg('80-00=dir:///x'), { instanceOf: RouteRangeError, message: /start <= end/ });
  t.throws(() => parseStoreArg('0-ff=dir:///x'), { instanceOf: RouteRangeError, message: /two hex bytes/ });
  t.deepEqual(parseStoreArg('s3://k:s@h/b?region=x'), { start: 0, end: 255, url: 's3://k:s@h/b?region=x' });
  t.deepEqual(parseStoreArg('0A-Fe=zdb://h/ns'), { start: 10, end: 254, url: 'zdb://h/ns' });
});

test('the cache: <cache>/<h[0:2]>/<h[2:4]>/<h>, filled on a miss, read before the store', async (t) => {
  const d = await temp(t);
  const storeRoot = path.join(d, 'store');
  const cacheRoot = path.join(d, 'cache');
  const store = openStore(`dir://${storeRoot}`);
  const id = randomBytes(32);
  const hex = id.toString('hex');
  const data = randomBytes(2000);
  await store.put(id, data);
  const cached = new CachedStore(new ChunkCache(cacheRoot), openRouter([{ start: 0, end: 255, url: `dir://${storeRoot}` }]));
  t.is(cached.url, `0-255=dir://${storeRoot}`);
  t.deepEqual(await cached.get(id), data);
  const file = path.join(cacheRoot, hex.slice(0, 2), hex.slice(2, 4), hex);
  t.deepEqual(await readFile(file), data);
  await unlink(dirChunkPath(storeRoot, hex));
  t.deepEqual(await cached.get(id), data, 'served by the cache alone');
  t.true(await cached.has(id));
  const absent = randomBytes(32);
  t.is(await cached.get(absent), undefined);
  t.false(await exists(path.join(cacheRoot, absent.toString('hex').slice(0, 2))), 'a miss caches nothing');
  await cached.close();
});

test('with the hash check: a damaged replica is skipped for the next, a damaged cache entry is fetched again', async (t) => {
  const check = (id: Buffer, data: Buffer) => createHash('sha256').update(data).digest().equals(id);
  const d = await temp(t);
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(d, n));
  const data = randomBytes(3000);
  const id = createHash('sha256').update(data).digest();
  const hex = id.toString('hex');
  const router = openRouter([{ start: 0, end: 255, url: `dir://${a}` }, { start: 0, end: 255, url: `dir://${b}` }], { random: () => 0.999, check });
  await router.put(id, data);
  await writeFile(dirChunkPath(a, hex), 'damaged');
  await writeFile(dirChunkPath(b, hex), 'damaged too');
  const e = await t.throwsAsync(() => router.get(id), { instanceOf: RouteError });
  t.true(e!.message.includes(`store dir://${a}: the data does not hash to the id`), e!.message);
  await writeFile(dirChunkPath(b, hex), data);
  for (const random of [() => 0, () => 0.999]) {
    const r = openRouter([{ start: 0, end: 255, url: `dir://${a}` }, { start: 0, end: 255, url: `dir://${b}` }], { random, check });
    t.deepEqual(await r.get(id), data);
  }
  const cached = new CachedStore(new ChunkCache(c), router, check);
  await mkdir(path.join(c, hex.slice(0, 2), hex.slice(2, 4)), { recursive: true });
  await writeFile(path.join(c, hex.slice(0, 2), hex.slice(2, 4), hex), 'bit rot');
  t.deepEqual(await cached.get(id), data);
  t.deepEqual(await readFile(path.join(c, hex.slice(0, 2), hex.slice(2, 4), hex)), data, 'the cache entry was replaced');
});
