import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RespClient } from '../../zdb/resp/client.ts';
import { everyTypeTree } from '../helpers/flist-pack.ts';
import { removeDir, startZdb } from '../helpers/zdb-process.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');
const FIXTURE = '/work/shared/fixtures/flist/hello-world-latest.fl';

function zeroboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let src: string;
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-cli-'));
  src = path.join(dir, 'src');
  await everyTypeTree(src);
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function snapshot(root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const inodes = new Map<number, string>();
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const p = path.join(d, name);
      const st = await lstat(p);
      const rel = path.relative(root, p);
      const firstName = inodes.get(st.ino);
      if (st.isFile() && st.nlink > 1 && !firstName) inodes.set(st.ino, rel);
      out[rel] = {
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        size: st.isDirectory() ? 0 : st.size,
        mtime: Math.floor(st.mtimeMs / 1000),
        nlink: st.isDirectory() ? 0 : st.nlink,
        linkedTo: st.isFile() && st.nlink > 1 ? (firstName ?? rel) : undefined,
        rdev: st.rdev,
        target: st.isSymbolicLink() ? await readlink(p) : undefined,
        sha: st.isFile() ? execFileSync('sha256sum', [p]).toString().split(' ')[0] : undefined,
      };
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out;
}

const oneLine = (t: { is: (a: unknown, b: unknown, m?: string) => void }, stderr: string) => t.is(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);

async function packed(name: string, storeName = name): Promise<{ fl: string; store: string }> {
  const store = path.join(dir, `store-${storeName}`);
  const fl = path.join(dir, `${name}.fl`);
  const r = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', `dir://${store}`, '--tag', 'author=test']);
  if (r.code !== 0) throw new Error(`pack failed: ${r.stderr}`);
  return { fl, store };
}

async function chunkFiles(store: string): Promise<string[]> {
  return (await readdir(store, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort();
}

test('pack then unpack gives back every file type with its bytes and metadata', async (t) => {
  const { fl } = await packed('roundtrip');
  const out = path.join(dir, 'out-roundtrip');
  const r = await zeroboot(['flist', 'unpack', fl, out]);
  t.is(r.code, 0, r.stderr);
  const want = await snapshot(src);
  const got = await snapshot(out);
  t.deepEqual(got, want);
  t.is((got['setuid'] as { mode: number }).mode & 0o7777, 0o4755);
  t.is((got['hardlink'] as { linkedTo: string }).linkedTo, 'hardlink');
  t.is((got['sub/three-mb'] as { linkedTo: string }).linkedTo, 'hardlink');
  const cat = execFileSync(BIN, ['flist', 'cat', fl, '/sub/three-mb'], { maxBuffer: 64 << 20 });
  t.true(cat.equals(await readFile(path.join(src, 'sub/three-mb'))));
});

test('packing twice gives identical chunk ids and an identical .fl', async (t) => {
  const a = await packed('twice-a', 'twice');
  const inodes = async () => Promise.all((await chunkFiles(a.store)).map(async (f) => `${f}:${(await lstat(f)).ino}`));
  const before = await inodes();
  const b = await packed('twice-b', 'twice');
  // chunks the store has are not written again (a dir store write is a rename: a new inode)
  t.deepEqual(await inodes(), before);
  t.true((await readFile(a.fl)).equals(await readFile(b.fl)));
  // into another store: the same chunk ids
  const c = await packed('twice-c');
  const ids = (s: string) => chunkFiles(s).then((f) => f.map((p) => path.basename(p)));
  t.deepEqual(await ids(a.store), await ids(c.store));
  const blockIds = (fl: string) => execFileSync('sqlite3', [fl, 'SELECT hex(id) FROM block ORDER BY rowid']).toString();
  t.is(blockIds(a.fl), blockIds(c.fl));
  // 512 KiB file: 1 chunk, 3 MB: 6 (shared by the hard link), setuid script: 1
  t.is((await ids(a.store)).length, 8);
});

test('ls --json of the rfs fixture lists the tree sqlite3 shows', async (t) => {
  const r = await zeroboot(['flist', 'ls', '--json', FIXTURE]);
  t.is(r.code, 0, r.stderr);
  const listing = JSON.parse(r.stdout) as { routes: { start: number; end: number; url: string }[]; entries: { path: string; mode: string; size: number; uid: number; gid: number; target?: string }[] };
  const rows = execFileSync('sqlite3', ['-separator', '|', FIXTURE, "SELECT i.name, i.mode, i.size, i.uid, i.gid, coalesce(e.data, '') FROM inode i LEFT JOIN extra e ON e.ino = i.ino ORDER BY i.ino"]).toString().trim().split('\n');
  t.is(listing.entries.length, rows.length);
  const fromSql = rows.map((l) => l.split('|')).map(([name, mode, size, uid, gid, target]) => `${name}|${(Number(mode) & 0o7777).toString(8).padStart(4, '0')}|${size}|${uid}|${gid}|${target}`).sort();
  const fromLs = listing.entries.map((e) => `${e.path === '/' ? '/' : path.basename(e.path)}|${e.mode}|${e.size}|${e.uid}|${e.gid}|${e.target ?? ''}`).sort();
  t.deepEqual(fromLs, fromSql);
  const routes = execFileSync('sqlite3', ['-separator', '|', FIXTURE, 'SELECT start, "end", url FROM route']).toString().trim();
  t.deepEqual(listing.routes.map((x) => `${x.start}|${x.end}|${x.url}`).join('\n'), routes);
});

test('a deleted chunk: verify and unpack fail in one line naming it, nothing partial under the final name', async (t) => {
  const { fl, store } = await packed('missing');
  const chunks = await chunkFiles(store);
  // the 3 MB file's chunks are the only ones shared by two names; any of them will do
  const ls = JSON.parse((await zeroboot(['flist', 'ls', '--json', fl])).stdout) as { entries: { path: string; chunks?: number }[] };
  t.is(ls.entries.find((e) => e.path === '/sub/three-mb')?.chunks, 6);
  const blocks = execFileSync('sqlite3', [fl, "SELECT hex(b.id) FROM block b JOIN inode i ON i.ino = b.ino WHERE i.name = 'exact-512k'"]).toString().trim().toLowerCase();
  const victim = chunks.find((c) => path.basename(c) === blocks)!;
  t.truthy(victim);
  const saved = await readFile(victim);
  await rm(victim);
  const v = await zeroboot(['flist', 'verify', fl]);
  t.is(v.code, 1);
  oneLine(t, v.stderr);
  t.regex(v.stderr, new RegExp(`${blocks}.*missing|missing.*${blocks}`));
  t.true(v.stderr.includes('/exact-512k'));
  const out = path.join(dir, 'out-missing');
  const u = await zeroboot(['flist', 'unpack', fl, out]);
  t.is(u.code, 1);
  oneLine(t, u.stderr);
  t.true(u.stderr.includes(blocks) && u.stderr.includes('/exact-512k'), u.stderr);
  const left = await readdir(out);
  t.false(left.includes('exact-512k'));
  t.deepEqual(left.filter((n) => n.includes('partial')), []);
  // the chunk back: unpacking again into the same directory completes the tree
  await writeFile(victim, saved);
  const again = await zeroboot(['flist', 'unpack', fl, out]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(await snapshot(out), await snapshot(src));
});

test('a flipped byte in a chunk is refused as a hash mismatch', async (t) => {
  const { fl, store } = await packed('flipped');
  const id = execFileSync('sqlite3', [fl, "SELECT hex(b.id) FROM block b JOIN inode i ON i.ino = b.ino WHERE i.name = 'setuid'"]).toString().trim().toLowerCase();
  const file = (await chunkFiles(store)).find((c) => path.basename(c) === id)!;
  const data = await readFile(file);
  data[data.length >> 1] ^= 0x40;
  await writeFile(file, data);
  for (const args of [['verify', fl], ['cat', fl, '/setuid'], ['unpack', fl, path.join(dir, 'out-flipped')]]) {
    const r = await zeroboot(['flist', ...args]);
    t.is(r.code, 1, args[0]);
    oneLine(t, r.stderr);
    t.true(r.stderr.includes(id) && r.stderr.includes('/setuid'), r.stderr);
    t.regex(r.stderr, /hashes to [0-9a-f]{64}, not to its id/);
  }
  t.false((await readdir(path.join(dir, 'out-flipped'))).includes('setuid'));
});

test('bad input: one line and a non-zero exit naming the file, the URL or the store', async (t) => {
  const { fl } = await packed('bad');
  const truncated = path.join(dir, 'truncated.fl');
  await writeFile(truncated, (await readFile(fl)).subarray(0, 5000));
  const foreign = path.join(dir, 'foreign.fl');
  await writeFile(foreign, 'not an flist at all\n'.repeat(20));
  const cases: [string[], RegExp, number][] = [
    [['ls', truncated], /truncated\.fl/, 1],
    [['ls', foreign], /foreign\.fl/, 1],
    [['ls', path.join(dir, 'nope.fl')], /nope\.fl/, 1],
    [['pack', src, '-o', path.join(dir, 'x.fl'), '--store', 'bogus://x'], /bogus:\/\/x/, 1],
    [['pack', src, '-o', path.join(dir, 'x.fl')], /--store/, 2],
    [['verify', fl, '--store', 'zdb://127.0.0.1:1'], /127\.0\.0\.1:1/, 1],
    [['pack', src, '-o', path.join(dir, 'x.fl'), '--store', 'zdb://u:secret@127.0.0.1:1/ns'], /src\/.*127\.0\.0\.1:1/, 1],
    [['cat', fl, '/no/such'], /\/no\/such/, 1],
  ];
  for (const [args, re, code] of cases) {
    const r = await zeroboot(['flist', ...args]);
    t.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    oneLine(t, r.stderr);
    t.regex(r.stderr, re);
    t.false(r.stderr.includes('secret'), 'no password in messages');
  }
  t.false((await readdir(dir)).includes('x.fl'));
});

test('pack into a password-protected zdb namespace (our zdb) and a dir at once: the .fl keeps no password; unpack reads back with it', async (t) => {
  const z = await startZdb(['--admin', 'admin-pass']);
  t.teardown(async () => {
    await z.kill('SIGKILL');
    await removeDir(z.dir);
  });
  const admin = await RespClient.connect({ host: '127.0.0.1', port: z.port });
  try {
    await admin.auth('admin-pass');
    for (const cmd of [['NSNEW', 'chunks'], ['NSSET', 'chunks', 'password', 'secret'], ['NSSET', 'chunks', 'public', '0']]) {
      const r = await admin.command(cmd);
      if (r.type === 'error') throw new Error(`${cmd.join(' ')}: ${r.text}`);
    }
  } finally {
    admin.close();
  }
  const url = `zdb://u:secret@127.0.0.1:${z.port}/chunks`;
  const fl = path.join(dir, 'zdb.fl');
  const p = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', `00-7f=${url}`, '--store', `80-ff=${url}`, '--store', `dir://${path.join(dir, 'store-zdb')}`]);
  t.is(p.code, 0, p.stderr);
  t.false((await readFile(fl)).includes('secret'));
  const routes = JSON.parse((await zeroboot(['flist', 'ls', '--json', fl])).stdout).routes as { url: string }[];
  t.deepEqual(routes.map((r) => r.url.replace(String(z.port), 'PORT')), ['zdb://u@127.0.0.1:PORT/chunks', 'zdb://u@127.0.0.1:PORT/chunks', `dir://${path.join(dir, 'store-zdb')}`]);
  const out = path.join(dir, 'out-zdb');
  const u = await zeroboot(['flist', 'unpack', fl, out, '--store', url]);
  t.is(u.code, 0, u.stderr);
  t.deepEqual(await snapshot(out), await snapshot(src));
  const bad = await zeroboot(['flist', 'verify', fl, '--store', `zdb://u:wrong@127.0.0.1:${z.port}/chunks`]);
  t.is(bad.code, 1);
  oneLine(t, bad.stderr);
  t.false(bad.stderr.includes('wrong'));
  t.regex(bad.stderr, /chunks/);
});
