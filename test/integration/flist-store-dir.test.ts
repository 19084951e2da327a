// dir:// against a real folder: the rfs layout, missing chunks, atomic
// writes (a write cut by the file size limit leaves nothing under the id),
// errors that name the store and the chunk; the factory refuses bad URLs.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError, StoreUrlError, ChunkIdError } from '../../flist/stores/errors.ts';
import { openStore } from '../../flist/stores/open.ts';

const DIR_TS = fileURLToPath(new URL('../../flist/stores/dir.ts', import.meta.url));

async function tempRoot(t: { teardown(f: () => Promise<void>): void }): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'flist-store-dir-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

test('put then get and has, in the <root>/<hex[0:2]>/<hex> layout', async (t) => {
  const root = await tempRoot(t);
  const store = openStore(`dir://${root}`);
  t.is(store.url, `dir://${root}`);
  const id = randomBytes(32);
  const data = randomBytes(100_000);
  t.false(await store.has(id));
  t.is(await store.get(id), undefined);
  await store.put(id, data);
  const hex = id.toString('hex');
  t.deepEqual(await readFile(path.join(root, hex.slice(0, 2), hex)), data);
  t.deepEqual(await store.get(id), data);
  t.true(await store.has(id));
  t.deepEqual(await readdir(path.join(root, hex.slice(0, 2))), [hex], 'no temporary file left');
  await store.close();
});

test('the root folder need not exist before the first write; concurrent writes of one id stay whole', async (t) => {
  const root = path.join(await tempRoot(t), 'not', 'yet');
  const store = openStore(`dir://${root}`);
  const id = randomBytes(32);
  const data = randomBytes(300_000);
  await Promise.all(Array.from({ length: 20 }, () => store.put(id, data)));
  t.deepEqual(await store.get(id), data);
  const hex = id.toString('hex');
  t.deepEqual(await readdir(path.join(root, hex.slice(0, 2))), [hex]);
});

test('a write cut short (file size limit) leaves nothing under the chunk id', async (t) => {
  const root = await tempRoot(t);
  const id = randomBytes(32);
  const hex = id.toString('hex');
  const script = `import { DirStore } from ${JSON.stringify(DIR_TS)};
const s = new DirStore('dir://${root}', ${JSON.stringify(root)});
try { await s.put(Buffer.from('${hex}', 'hex'), Buffer.alloc(512 * 1024, 7)); console.log('written'); }
catch (e) { console.log(e.name + ': ' + e.message); }`;
  // ulimit -f 64 (KiB): the write fails with EFBIG; SIGXFSZ ignored so Node sees the error
  const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 64; exec "$0" --input-type=module -e "$1"`, process.execPath, script], { encoding: 'utf8' });
  t.regex(r.stdout, new RegExp(`StoreError: store dir://${root}: writing chunk ${hex} failed: EFBIG`), r.stderr);
  t.deepEqual(await readdir(path.join(root, hex.slice(0, 2))), [], 'neither the chunk nor a temporary file');
});

test('a broken store is an error naming the store and the chunk, not a missing chunk', async (t) => {
  const parent = await tempRoot(t);
  const root = path.join(parent, 'store');
  await writeFile(root, 'a file where the folder should be');
  const store = openStore(`dir://${root}`);
  const id = randomBytes(32);
  const hex = id.toString('hex');
  for (const op of [() => store.get(id), () => store.has(id), () => store.put(id, Buffer.from('x'))]) {
    const e = await t.throwsAsync(op, { instanceOf: StoreError });
    t.true(e!.message.startsWith(`store dir://${root}: `), e!.message);
    t.true(e!.message.includes(hex), e!.message);
    t.regex(e!.message, /ENOTDIR|EEXIST/);
  }
});

test('ids that cannot be file names are refused before touching the disk', async (t) => {
  const store = openStore(`dir://${await tempRoot(t)}`);
  await t.throwsAsync(() => store.get(Buffer.alloc(0)), { instanceOf: ChunkIdError });
  await t.throwsAsync(() => store.put(Buffer.alloc(65), Buffer.from('x')), { instanceOf: ChunkIdError });
});

test('the factory refuses bad URLs with a typed error', (t) => {
  t.throws(() => openStore('s3s://k:secret@127.0.0.1/bucket'), { instanceOf: StoreUrlError, message: /needs a port/ });
  t.throws(() => openStore('dir://relative/path'), { instanceOf: StoreUrlError });
});
