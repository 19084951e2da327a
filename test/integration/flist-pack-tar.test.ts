import test from 'ava';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn as ptySpawn } from 'node-pty';
import { BIN, everyTypeTree, listing, run, snapshot, zeroboot } from '../helpers/flist-pack.ts';

let dir: string;
let src: string;
const LONG = 'n'.repeat(120);

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-pack-tar-'));
  src = path.join(dir, 'src');
  await everyTypeTree(src);
  await run('mknod', [path.join(src, 'loop9'), 'b', '7', '9']);
  await mkdir(path.join(src, 'sticky'));
  await chmod(path.join(src, 'sticky'), 0o1777);
  await symlink('/absolute/dangling', path.join(src, 'sub/abs-link'));
  // longer than the 100 bytes of a tar header's name: GNU ././@LongLink or a PAX record
  await writeFile(path.join(src, 'sub/deeper', LONG), 'long name\n');
  await utimes(path.join(src, 'sub/three-mb'), 1_500_000_000, 1_500_000_000);
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** GNU tar of src (run as root: owners, devices and modes as they are), names sorted. */
async function tarOf(name: string, extra: string[] = []): Promise<string> {
  const out = path.join(dir, name);
  await run('tar', ['--sort=name', '--numeric-owner', ...extra, '-cf', out, '-C', src, '.']);
  return out;
}

async function pack(source: string, name: string, store = 'store'): Promise<string> {
  const fl = path.join(dir, `${name}.fl`);
  const r = await zeroboot(['flist', 'pack', source, '-o', fl, '--store', `dir://${path.join(dir, store)}`, '--tag', 'author=test']);
  if (r.code !== 0) throw new Error(`pack ${source}: ${r.stderr}`);
  return fl;
}

async function chunkIds(store: string): Promise<string[]> {
  return (await readdir(path.join(dir, store), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
}

test('tar -> .fl -> unpack gives back every file type with its bytes and metadata', async (t) => {
  const fl = await pack(await tarOf('rt.tar'), 'rt');
  const out = path.join(dir, 'out-rt');
  const r = await zeroboot(['flist', 'unpack', fl, out]);
  t.is(r.code, 0, r.stderr);
  const want = await snapshot(src);
  const got = await snapshot(out);
  t.deepEqual(got, want);
  t.is((got['setuid'] as { mode: string }).mode, '104755');
  t.is((got['sticky'] as { mode: string }).mode, '41777');
  t.is((got['null'] as { rdev: number }).rdev, (1 << 8) | 3);
  t.is((got['loop9'] as { mode: string }).mode.slice(0, 2), '60');
  t.is((got['hardlink'] as { linkedTo: string }).linkedTo, 'hardlink');
  t.is((got['sub/three-mb'] as { linkedTo: string }).linkedTo, 'hardlink');
  t.is((got['exact-512k'] as { uid: number }).uid, 1234);
});

test('the same tree as a dir, a tar (GNU and PAX) and a tar.gz gives the same listing; plain and gzip tar the same .fl', async (t) => {
  const fromDir = await listing(await pack(src, 'same-dir', 'same'));
  const gnu = await pack(await tarOf('same.tar'), 'same-tar', 'same');
  const pax = await pack(await tarOf('same-pax.tar', ['--format=pax']), 'same-pax', 'same');
  const gz = await pack(await tarOf('same.tar.gz', ['-z']), 'same-gz', 'same');
  const xz = await pack(await tarOf('same.tar.xz', ['-J']), 'same-xz', 'same');
  // told by content, not by name
  const zst = await pack(await tarOf('same-zstd.bin', ['--zstd']), 'same-zst', 'same');
  t.deepEqual(await listing(gnu), fromDir);
  t.deepEqual(await listing(pax), fromDir);
  t.deepEqual(await listing(xz), fromDir);
  t.deepEqual(await listing(zst), fromDir);
  t.true((await readFile(gnu)).equals(await readFile(gz)), 'tar and tar.gz give a byte-identical .fl');
  const entries = (fromDir as { entries: { path: string }[] }).entries.map((e) => e.path);
  t.true(entries.includes(`/sub/deeper/${LONG}`));
});

test('packing a tar twice gives identical chunk ids and a byte-identical .fl', async (t) => {
  const tarball = await tarOf('twice.tar');
  const a = await pack(tarball, 'twice-a', 'twice-1');
  const b = await pack(tarball, 'twice-b', 'twice-1');
  t.true((await readFile(a)).equals(await readFile(b)));
  // into another, empty store: the same chunk ids
  await pack(tarball, 'twice-c', 'twice-2');
  t.deepEqual(await chunkIds('twice-1'), await chunkIds('twice-2'));
  // 512 KiB: 1 chunk, 3 MB: 6 (shared with the hard link), setuid script 1, long name 1
  t.is((await chunkIds('twice-1')).length, 9);
  // the dir source packs the same chunks
  await pack(src, 'twice-dir', 'twice-3');
  t.deepEqual(await chunkIds('twice-3'), await chunkIds('twice-1'));
});

test('directories a tar implies but lacks are 0755 root:root, mtime 0; "./" and leading "/" are dropped; a later entry wins', async (t) => {
  const tarball = path.join(dir, 'implied.tar');
  // only files named, no directory entries; one name given with "./", one absolute (-P keeps the "/")
  await run('tar', ['--numeric-owner', '--no-recursion', '-cf', tarball, '-C', src, './sub/deeper/' + LONG, 'exact-512k']);
  await run('tar', ['--numeric-owner', '-P', '--transform', 's,^,/,', '-rf', tarball, '-C', src, 'empty']);
  // appended again, as a symlink this time: the later entry replaces the file
  const swap = path.join(dir, 'swap');
  await mkdir(swap);
  await symlink('exact-512k', path.join(swap, 'empty'));
  await run('tar', ['--numeric-owner', '-rf', tarball, '-C', swap, 'empty']);
  const l = (await listing(await pack(tarball, 'implied'))) as { entries: { path: string; type: string; mode: string; uid: number; mtime: number; target?: string }[] };
  const byPath = new Map(l.entries.map((e) => [e.path, e]));
  t.deepEqual([...byPath.keys()], ['/', '/empty', '/exact-512k', '/sub', '/sub/deeper', `/sub/deeper/${LONG}`]);
  for (const p of ['/', '/sub', '/sub/deeper']) t.like(byPath.get(p), { type: 'dir', mode: '0755', uid: 0, mtime: 0 });
  t.like(byPath.get('/empty'), { type: 'symlink', target: 'exact-512k' });
  t.like(byPath.get('/exact-512k'), { type: 'file', uid: 1234 });
});

test('a progress bar on a terminal (percent of the tarball read), nothing on stderr otherwise', async (t) => {
  const tarball = await tarOf('progress.tar');
  const store = `dir://${path.join(dir, 'store-progress')}`;
  const term = ptySpawn(BIN, ['flist', 'pack', tarball, '-o', path.join(dir, 'progress-tty.fl'), '--store', store], { cols: 120, rows: 10 });
  let screen = '';
  term.onData((d) => (screen += d));
  const code = await new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
  // node-pty can report the exit before the last output is read: wait for the summary line
  for (const deadline = Date.now() + 30_000; !/packed \d+ entries/.test(screen) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  t.is(code, 0, screen);
  t.regex(screen, /\r\x1b\[Kzeroboot flist: packing \[[#-]+\] +\d+% [\d.]+ MiB\/[\d.]+ MiB  \d+ files/);
  t.regex(screen, /packed \d+ entries/);
  const piped = await zeroboot(['flist', 'pack', tarball, '-o', path.join(dir, 'progress-pipe.fl'), '--store', store]);
  t.is(piped.code, 0);
  t.is(piped.stderr, '');
});
