// `zeroboot flist merge` end to end: two trees packed into two different
// dir:// stores, merged, and unpacked from the merged .fl's own routes: the
// files of both layers come back (each chunk from the store that holds it),
// the upper layer's whiteouts removed what they name, and no chunk was
// copied. Bad input is one line and exit code 1 or 2.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function zeroboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir = '';
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-merge-cli-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function files(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

test('merge: layers in two stores unpack from the merged routes, whiteouts applied, no chunk copied', async (t) => {
  const lower = path.join(dir, 'lower');
  const upper = path.join(dir, 'upper');
  await mkdir(path.join(lower, 'etc'), { recursive: true });
  await mkdir(path.join(lower, 'doc/en'), { recursive: true });
  await writeFile(path.join(lower, 'etc/hosts'), 'lower hosts\n');
  await writeFile(path.join(lower, 'etc/motd'), 'lower motd\n');
  await writeFile(path.join(lower, 'doc/en/a.txt'), 'doc\n');
  await mkdir(path.join(upper, 'etc'), { recursive: true });
  await writeFile(path.join(upper, 'etc/hosts'), 'upper hosts\n');
  await writeFile(path.join(upper, 'etc/.wh.motd'), '');
  await writeFile(path.join(upper, '.wh.doc'), '');
  const storeA = path.join(dir, 'store-a');
  const storeB = path.join(dir, 'store-b');
  for (const [src, store] of [[lower, storeA], [upper, storeB]]) {
    const r = await zeroboot(['flist', 'pack', src, '-o', `${src}.fl`, '--store', `dir://${store}`]);
    t.is(r.code, 0, r.stderr);
  }
  const before = [...(await files(storeA)), ...(await files(storeB))];
  const out = path.join(dir, 'merged.fl');
  const m = await zeroboot(['flist', 'merge', `${lower}.fl`, `${upper}.fl`, '-o', out, '--json']);
  t.is(m.code, 0, m.stderr);
  t.like(JSON.parse(m.stdout), { layers: 2, whitedOut: 4, routes: 2 });
  t.deepEqual([...(await files(storeA)), ...(await files(storeB))], before, 'no chunk copied');

  const ls = await zeroboot(['flist', 'ls', '--json', out]);
  const listing = JSON.parse(ls.stdout) as { routes: { url: string }[]; entries: { path: string }[] };
  t.deepEqual(listing.routes.map((r) => r.url), [`dir://${storeA}`, `dir://${storeB}`]);
  t.deepEqual(listing.entries.map((e) => e.path), ['/', '/etc', '/etc/hosts']);

  const into = path.join(dir, 'unpacked');
  const u = await zeroboot(['flist', 'unpack', out, into]);
  t.is(u.code, 0, u.stderr);
  t.is(await readFile(path.join(into, 'etc/hosts'), 'utf8'), 'upper hosts\n');

  // a lower file kept by the merge comes from the lower layer's store
  const upper2 = path.join(dir, 'upper2');
  await mkdir(path.join(upper2, 'etc'), { recursive: true });
  await writeFile(path.join(upper2, 'etc/hosts'), 'upper hosts\n');
  const kept = path.join(dir, 'kept.fl');
  t.is((await zeroboot(['flist', 'pack', upper2, '-o', `${upper2}.fl`, '--store', `dir://${storeB}`])).code, 0);
  t.is((await zeroboot(['flist', 'merge', `${lower}.fl`, `${upper2}.fl`, '-o', kept])).code, 0);
  const c = await zeroboot(['flist', 'cat', kept, '/doc/en/a.txt']);
  t.is(c.code, 0, c.stderr);
  t.is(c.stdout, 'doc\n');
});

test('merge: bad input is one line and a non-zero exit', async (t) => {
  const noOut = await zeroboot(['flist', 'merge', path.join(dir, 'a.fl')]);
  t.is(noOut.code, 2);
  t.is(noOut.stderr, 'zeroboot: flist merge: give the output file with -o FILE.fl\n');
  const none = await zeroboot(['flist', 'merge', '-o', path.join(dir, 'x.fl')]);
  t.is(none.code, 2);
  const junk = path.join(dir, 'junk.fl');
  await writeFile(junk, 'not sqlite at all, just text');
  const bad = await zeroboot(['flist', 'merge', junk, '-o', path.join(dir, 'y.fl')]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^zeroboot: \S+junk\.fl: not an flist: not an SQLite file[^\n]*\n$/);
  t.deepEqual((await readdir(dir)).filter((n) => n.startsWith('y.fl')), [], 'nothing written');
});
