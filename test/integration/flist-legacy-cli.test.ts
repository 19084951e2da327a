// `zeroboot flist ls|cat|unpack|verify` on a legacy 0-flist .flist made by
// the reference zflist (test/fixtures/legacy-flist/README.md), its chunks
// served by our `zeroboot zdb` on loopback (the default namespace, and a
// password-protected one named by the flist's backend metadata), by a real
// redis-server, or read from a dir://. The expected tree is `stat` of the
// source tree, recorded when the fixture was made; bad input gets one line
// and exit 1.
import test from 'ava';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ListedEntry as Listed } from '../../flist/list.ts';
import { RespClient } from '../../zdb/resp/client.ts';
import { freePort, removeDir, START_DEADLINE_MS, startZdb, type ZdbProcess } from '../helpers/zdb-process.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, '../../bin/zeroboot');
const FIXTURES = path.resolve(HERE, '../fixtures/legacy-flist');
const FLIST = path.join(FIXTURES, 'tree.flist');
const BLOCKS = path.join(FIXTURES, 'blocks');
const ADMIN = 'admin-pass';

interface Expected {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: [number, number];
}

function zeroboot(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120_000, maxBuffer: 64 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() });
    });
  });
}

function oneLine(t: { is(a: unknown, b: unknown, m?: string): void }, stderr: string): void {
  t.is(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
}

/**
 * zflist's putdir records every special file as type 0 (socket); the reader
 * restores "major,minor" as a character device, anything else as a fifo, so
 * the block device of the source tree comes back as a character device.
 */
function asRestored(e: Expected): Expected {
  return e.type === 'block' ? { ...e, type: 'char' } : e;
}

/** Linux dev_t of major, minor (glibc's makedev). */
function makedev([major, minor]: [number, number]): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
}

let dir: string;
let expected: Expected[];
let z: ZdbProcess;

/** The fixture with its backend metadata replaced (the tar and the database rewritten with the system's tar and SQLite). */
async function withBackend(name: string, backend: object, source = FLIST): Promise<string> {
  const work = await mkdtemp(path.join(dir, 'rewrite-'));
  execFileSync('tar', ['xzf', source, '-C', work]);
  const db = new DatabaseSync(path.join(work, 'flistdb.sqlite3'));
  db.prepare("UPDATE metadata SET value = ? WHERE key = 'backend'").run(JSON.stringify(backend));
  db.close();
  const out = path.join(dir, name);
  execFileSync('tar', ['czf', out, '-C', work, './flistdb.sqlite3']);
  return out;
}

async function load(client: RespClient): Promise<void> {
  for (const hex of await readdir(BLOCKS)) {
    const r = await client.command(['SET', Buffer.from(hex, 'hex'), await readFile(path.join(BLOCKS, hex))]);
    if (r.type === 'error') throw new Error(`SET ${hex}: ${r.text}`);
  }
}

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-legacy-'));
  expected = (JSON.parse(await readFile(path.join(FIXTURES, 'expected.json'), 'utf8')) as { entries: Expected[] }).entries.map(asRestored);
  z = await startZdb(['--admin', ADMIN]);
  const admin = await RespClient.connect({ host: '127.0.0.1', port: z.port });
  try {
    await load(admin);
    await admin.auth(ADMIN);
    for (const cmd of [['NSNEW', 'legacyns'], ['NSSET', 'legacyns', 'password', 's3cret'], ['NSSET', 'legacyns', 'public', '0']]) {
      const r = await admin.command(cmd);
      if (r.type === 'error') throw new Error(`${cmd.join(' ')}: ${r.text}`);
    }
    await admin.select('legacyns', 's3cret');
    await load(admin);
  } finally {
    admin.close();
  }
});

test.after.always(async () => {
  await z?.kill('SIGKILL');
  if (z) await removeDir(z.dir);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('ls --json: the tree zflist packed, in the .fl listing shape; the backend shows as the route', async (t) => {
  const r = await zeroboot(['flist', 'ls', '--json', FLIST]);
  t.is(r.code, 0, r.stderr);
  const listing = JSON.parse(r.stdout.toString()) as { file: string; tags: Record<string, string>; routes: unknown[]; entries: Listed[] };
  t.is(listing.file, FLIST);
  t.deepEqual(listing.routes, [{ start: 0, end: 255, url: 'zdb://127.0.0.1:19911' }]);
  t.deepEqual(listing.tags, {});
  t.deepEqual(
    listing.entries.map((e) => e.path),
    ['/', ...expected.map((e) => e.path)],
    'depth first, names in byte order, as the .fl listing',
  );
  const byPath = new Map(listing.entries.map((e) => [e.path, e]));
  for (const e of expected) {
    const l = byPath.get(e.path)!;
    t.like(l, { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime }, e.path);
    if (e.type === 'file') t.is(l.size as number | undefined, e.size, e.path);
    if (e.target !== undefined) t.is(l.target, e.target, e.path);
    if (e.rdev) t.is(l.rdev, makedev(e.rdev), e.path);
  }
  t.like(byPath.get('/big.bin'), { chunks: 3 });
  t.like(byPath.get('/exact.bin'), { chunks: 1 });
  t.like(byPath.get('/empty'), { chunks: 0 });

  const text = await zeroboot(['flist', 'ls', FLIST]);
  t.is(text.code, 0);
  t.regex(text.stdout.toString(), /^-rwsr-xr-x +0 +0 +18 \/sub\/run\.sh$/m);
  t.regex(text.stdout.toString(), /^lrwxrwxrwx +0 +0 +12 \/sub\/link-to-hello -> \.\.\/hello\.txt$/m);
});

test('the bare flistdb.sqlite3 (out of its tar) is recognised by its tables, not its name', async (t) => {
  const work = await mkdtemp(path.join(dir, 'bare-'));
  execFileSync('tar', ['xzf', FLIST, '-C', work]);
  const renamed = path.join(work, 'something.fl');
  await cp(path.join(work, 'flistdb.sqlite3'), renamed);
  const a = await zeroboot(['flist', 'ls', '--json', renamed]);
  const b = await zeroboot(['flist', 'ls', '--json', FLIST]);
  t.is(a.code, 0, a.stderr);
  t.deepEqual(JSON.parse(a.stdout.toString()).entries, JSON.parse(b.stdout.toString()).entries);
});

test('cat: file contents from our zdb (--store), checked against the source tree', async (t) => {
  for (const p of ['/hello.txt', '/big.bin', '/exact.bin', '/sub/deeper/deep.txt', '/empty']) {
    const r = await zeroboot(['flist', 'cat', FLIST, p, '--store', `zdb://127.0.0.1:${z.port}`]);
    t.is(r.code, 0, r.stderr);
    t.is(createHash('sha256').update(r.stdout).digest('hex') as string | undefined, expected.find((e) => e.path === p)!.sha256, p);
  }
});

async function checkTree(t: { is(a: unknown, b: unknown, m?: string): void; true(v: boolean, m?: string): void }, out: string): Promise<void> {
  for (const e of expected) {
    const p = path.join(out, e.path);
    const st = await lstat(p);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
    t.is(type, e.type, `${e.path} type`);
    if (e.type !== 'symlink') t.is((st.mode & 0o7777).toString(8).padStart(4, '0'), e.mode, `${e.path} mode`);
    t.is(st.uid, e.uid, `${e.path} uid`);
    t.is(st.gid, e.gid, `${e.path} gid`);
    t.is(Math.floor(st.mtimeMs / 1000), e.mtime, `${e.path} mtime`);
    if (e.sha256) t.is(createHash('sha256').update(await readFile(p)).digest('hex'), e.sha256, `${e.path} contents`);
    if (e.target !== undefined) t.is(await readlink(p), e.target, `${e.path} target`);
    if (e.rdev) t.is(st.rdev, makedev(e.rdev), `${e.path} rdev`);
  }
  const names = (await readdir(out, { recursive: true })).map(String).sort();
  t.is(names.join(' '), expected.map((e) => e.path.slice(1)).sort().join(' '), 'nothing more, no partial files');
}

test('unpack: the backend in the metadata (a password-protected zdb namespace) restores modes, owners, links, devices and times', async (t) => {
  const flist = await withBackend('ns.flist', { host: '127.0.0.1', port: z.port, namespace: 'legacyns', password: 's3cret' }, path.join(FIXTURES, 'tree-ns.flist'));
  const ls = JSON.parse((await zeroboot(['flist', 'ls', '--json', flist])).stdout.toString()) as { routes: { url: string }[] };
  t.deepEqual(ls.routes.map((r) => r.url), [`zdb://127.0.0.1:${z.port}/legacyns`], 'the route shows no password');
  const out = path.join(dir, 'out-ns');
  const r = await zeroboot(['flist', 'unpack', flist, out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout.toString(), /unpacked 14 entries, 6 files, 1746337 bytes/);
  await checkTree(t, out);
  const v = await zeroboot(['flist', 'verify', flist]);
  t.is(v.code, 0, v.stderr);
  t.regex(v.stdout.toString(), /6 files, 7 chunks, all present and hashing right/);
});

test('unpack --store dir:// (files named by hex hash) overrides the backend', async (t) => {
  const out = path.join(dir, 'out-dir');
  const r = await zeroboot(['flist', 'unpack', FLIST, out, '--store', `dir://${BLOCKS}`]);
  t.is(r.code, 0, r.stderr);
  await checkTree(t, out);
});

test('bad archives: one line naming the file, exit 1', async (t) => {
  const whole = await readFile(FLIST);
  const cut = path.join(dir, 'cut.flist');
  await writeFile(cut, whole.subarray(0, 900));
  const tarFile = path.join(dir, 'plain.tar');
  execFileSync('sh', ['-c', `gunzip -c '${FLIST}' > '${tarFile}'`]);
  const cutTar = path.join(dir, 'cut.tar');
  await writeFile(cutTar, (await readFile(tarFile)).subarray(0, 3000));
  const foreignDir = await mkdtemp(path.join(dir, 'foreign-'));
  await writeFile(path.join(foreignDir, 'README'), 'not an flist\n');
  const foreign = path.join(dir, 'foreign.flist');
  execFileSync('tar', ['czf', foreign, '-C', foreignDir, 'README']);
  const garbage = path.join(dir, 'garbage.flist');
  await writeFile(garbage, 'garbage\n'.repeat(100));
  const flDir = await mkdtemp(path.join(dir, 'flin-'));
  // an .fl's tables where the flist database should be
  const db = new DatabaseSync(path.join(flDir, 'flistdb.sqlite3'));
  db.exec('CREATE TABLE inode (ino INTEGER PRIMARY KEY, parent INTEGER, name VARCHAR(255))');
  db.close();
  const flInside = path.join(dir, 'fl-inside.flist');
  execFileSync('tar', ['czf', flInside, '-C', flDir, 'flistdb.sqlite3']);
  const cases: [string, RegExp][] = [
    [cut, /cut\.flist: truncated or damaged \.flist: the gzip stream is cut short$/],
    [cutTar, /cut\.tar: truncated or damaged \.flist: the tar is cut short$/],
    [foreign, /foreign\.flist: a tar without flistdb\.sqlite3: not a 0-flist \.flist$/],
    [garbage, /garbage\.flist: not an flist: neither an SQLite \.fl \(rfs\) nor a tar or tar\.gz \.flist/],
    [flInside, /fl-inside\.flist: not a 0-flist database: no table "entries"$/],
  ];
  for (const [file, re] of cases) {
    for (const args of file === cut ? [['ls', file], ['unpack', file, path.join(dir, 'never')]] : [['ls', file]]) {
      const r = await zeroboot(['flist', ...args]);
      t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      oneLine(t, r.stderr);
      t.regex(r.stderr.trim(), re);
    }
  }
  t.false((await readdir(dir)).includes('never'));
  t.is((await zeroboot(['flist', 'ls', tarFile])).code, 0, 'an uncompressed tar is a .flist too');
});

test('a missing chunk and a damaged chunk: one line naming the file, the path and the chunk; no partial file left', async (t) => {
  const store = path.join(dir, 'bad-store');
  await cp(BLOCKS, store, { recursive: true });
  const bigSecond = '3dd813a80bd2dd691ca60cdd25dc04da';
  await rm(path.join(store, bigSecond));
  const helloChunk = 'e9c4cbf08e84e592dee34b4f3b513841';
  const damaged = await readFile(path.join(store, helloChunk));
  damaged[5] ^= 0x40;
  await writeFile(path.join(store, helloChunk), damaged);

  const out = path.join(dir, 'out-missing');
  const r = await zeroboot(['flist', 'unpack', FLIST, out, '--store', `dir://${store}`]);
  t.is(r.code, 1);
  oneLine(t, r.stderr);
  t.regex(r.stderr, new RegExp(`${FLIST}: /(big\\.bin: chunk ${bigSecond} is missing from every store|hello\\.txt: chunk ${helloChunk}: .*does not hash)`));
  const left = (await readdir(out, { recursive: true })).map(String);
  t.false(left.some((n) => n.includes('big.bin')), `no big.bin, partial or whole: ${left.join(' ')}`);
  t.false(left.some((n) => n.includes('hello.txt')), `no hello.txt, partial or whole: ${left.join(' ')}`);

  const c = await zeroboot(['flist', 'cat', FLIST, '/hello.txt', '--store', `dir://${store}`]);
  t.is(c.code, 1);
  oneLine(t, c.stderr);
  t.regex(c.stderr, new RegExp(`${FLIST}: /hello\\.txt: chunk ${helloChunk}: .*does not hash to the id`));
  const m = await zeroboot(['flist', 'cat', FLIST, '/big.bin', '--store', `dir://${store}`]);
  t.is(m.code, 1);
  t.regex(m.stderr, new RegExp(`${FLIST}: /big\\.bin: chunk ${bigSecond} is missing from every store`));
});

test('a backend that is down or refuses the password: one line, the password never shown', async (t) => {
  const closed = await freePort();
  const down = await withBackend('down.flist', { host: '127.0.0.1', port: closed });
  const wrong = await withBackend('wrong.flist', { host: '127.0.0.1', port: z.port, namespace: 'legacyns', password: 'not-the-secret' });
  const bogus = await withBackend('bogus.flist', { host: '', port: 'x' });
  const cases: [string[], RegExp][] = [
    [['cat', down, '/hello.txt'], new RegExp(`/hello\\.txt: .*127\\.0\\.0\\.1:${closed}`)],
    [['unpack', wrong, path.join(dir, 'out-wrong')], /refused the password/],
    [['cat', bogus, '/hello.txt'], /bogus\.flist: the backend metadata needs \{"host": \.\.\., "port": 1-65535\}/],
    [['cat', FLIST, '/hello.txt', '--store', 'nope://x'], /nope:\/\/x/],
  ];
  for (const [args, re] of cases) {
    const r = await zeroboot(['flist', ...args]);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    oneLine(t, r.stderr);
    t.regex(r.stderr, re);
    t.false(r.stderr.includes('not-the-secret'), 'no password in messages');
  }
});

test('a redis backend (no namespace): chunks read with GET of the raw hash from a real redis-server', async (t) => {
  const port = await freePort();
  const redisDir = await mkdtemp(path.join(dir, 'redis-'));
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
  const exited = new Promise((resolve) => redis.on('close', resolve));
  t.teardown(async () => {
    redis.kill('SIGKILL');
    await exited;
  });
  const deadline = Date.now() + START_DEADLINE_MS;
  let client: RespClient | undefined;
  while (!client) {
    try {
      client = await RespClient.connect({ host: '127.0.0.1', port });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    await load(client);
  } finally {
    client.close();
  }
  const flist = await withBackend('redis.flist', { host: '127.0.0.1', port });
  const out = path.join(dir, 'out-redis');
  const r = await zeroboot(['flist', 'unpack', flist, out]);
  t.is(r.code, 0, r.stderr);
  await checkTree(t, out);
});
