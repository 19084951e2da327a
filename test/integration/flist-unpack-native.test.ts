// The native file path of unpack (flist/native/unpack_files.c): from a dir
// store, every file is written by the addon and no worker thread starts; a
// file it cannot write goes by the worker path, which names the failure.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChunkPool } from '../../flist/chunk-pool.ts';
import { FlReader } from '../../flist/fl-file.ts';
import { ChunkReader, openReadStore } from '../../flist/read-chunks.ts';
import { unpackTree } from '../../flist/unpack.ts';
import { everyTypeTree, snapshot, zeroboot } from '../helpers/flist-pack.ts';

async function packed(t: { teardown: (f: () => Promise<void>) => void }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-native-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'src');
  await mkdir(src);
  await everyTypeTree(src);
  // a mode the umask would cut at open: set by fchmod instead
  await writeFile(path.join(src, 'open-to-all'), 'x');
  await chmod(path.join(src, 'open-to-all'), 0o777);
  // a file of its own in sub/ (everyTypeTree's is a hard link, made last)
  await writeFile(path.join(src, 'sub/own'), 'own\n');
  const fl = path.join(dir, 'x.fl');
  const store = path.join(dir, 'store');
  const p = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', `dir://${store}`]);
  if (p.code !== 0) throw new Error(p.stderr);
  return { dir, src, fl, store };
}

/** Unpacks in this process, counting the worker pools started. */
async function unpack(fl: string, out: string) {
  const reader = FlReader.open(fl);
  const store = openReadStore(reader, {});
  let pools = 0;
  let pool: Promise<ChunkPool> | undefined;
  try {
    const chunks = new ChunkReader(reader, store, () => {
      pools++;
      return (pool ??= ChunkPool.create({ threads: 1 }));
    });
    return { summary: await unpackTree(reader, out, chunks), pools };
  } catch (e) {
    return { error: e as Error, pools };
  } finally {
    await pool?.then((p) => p.close());
    await store.close();
    reader.close();
  }
}

test('from a dir store every file is written natively (no worker pool started), with its bytes, mode, owner and time', async (t) => {
  const { dir, src, fl } = await packed(t);
  const out = path.join(dir, 'out');
  const r = await unpack(fl, out);
  t.is(r.error, undefined);
  t.is(r.pools, 0, 'no file fell back to the worker path');
  t.deepEqual(await snapshot(out), await snapshot(src));
});

test('a chunk missing from the dir store: that file goes by the worker path, whose error names the .fl, the path and the chunk; nothing partial left', async (t) => {
  const { dir, fl, store } = await packed(t);
  const id = execFileSync('sqlite3', [fl, "SELECT lower(hex(b.id)) FROM block b JOIN inode i ON i.ino = b.ino WHERE i.name = 'exact-512k'"]).toString().trim();
  const chunk = path.join(store, id.slice(0, 2), id);
  await rename(chunk, `${chunk}.away`);
  const out = path.join(dir, 'out');
  const r = await unpack(fl, out);
  t.is(r.pools, 1);
  t.is(r.error?.name, 'MissingChunkError');
  t.is(r.error?.message, `${fl}: /exact-512k: chunk ${id} is missing from every store`);
  const names = await readdir(out);
  t.false(names.includes('exact-512k'));
  t.deepEqual(names.filter((n) => n.includes('zb-partial')), []);
});

test('a chunk whose bytes changed: refused by its id through the worker path, as before', async (t) => {
  const { dir, fl, store } = await packed(t);
  const id = execFileSync('sqlite3', [fl, "SELECT lower(hex(b.id)) FROM block b JOIN inode i ON i.ino = b.ino WHERE i.name = 'setuid'"]).toString().trim();
  const chunk = path.join(store, id.slice(0, 2), id);
  const bytes = execFileSync('cat', [chunk]);
  bytes[bytes.length - 1] ^= 1;
  await writeFile(chunk, bytes);
  const out = path.join(dir, 'out');
  const r = await unpack(fl, out);
  t.is(r.error?.name, 'ChunkPathError');
  t.regex(r.error?.message ?? '', new RegExp(`^${fl}: /setuid: chunk ${id}: .*hashes to`));
  t.deepEqual((await readdir(out)).filter((n) => n === 'setuid' || n.includes('zb-partial')), []);
});

test('a folder of the tree that is a symlink in the destination is refused before any file is written through it', async (t) => {
  const { dir, fl } = await packed(t);
  const out = path.join(dir, 'out');
  const elsewhere = path.join(dir, 'elsewhere');
  await mkdir(out);
  await mkdir(elsewhere);
  await symlink(elsewhere, path.join(out, 'sub'));
  const r = await unpack(fl, out);
  t.is(r.error?.name, 'TreeError');
  t.regex(r.error?.message ?? '', /creating the folders/);
  t.deepEqual(await readdir(elsewhere), []);
});
