import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function zeroboot(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120_000 }, (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }));
  });
}

// A file of several chunks is written at offsets by several ops at once: a
// chunk missing in its middle must still leave nothing, under any name.
test('a multi-chunk file with a missing middle chunk: one line naming it, no file and no temp file left; a rerun completes it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-partial-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'big'), randomBytes(3_000_000));
  await writeFile(path.join(src, 'small'), 'small\n');
  const fl = path.join(dir, 'x.fl');
  const store = path.join(dir, 'store');
  const p = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', `dir://${store}`]);
  t.is(p.code, 0, p.stderr);
  const id = execFileSync('sqlite3', [fl, "SELECT lower(hex(b.id)) FROM block b JOIN inode i ON i.ino = b.ino WHERE i.name = 'big' ORDER BY b.rowid LIMIT 1 OFFSET 3"]).toString().trim();
  const chunk = path.join(store, id.slice(0, 2), id);
  await rename(chunk, `${chunk}.away`);
  const out = path.join(dir, 'out');
  const u = await zeroboot(['flist', 'unpack', fl, out]);
  t.is(u.code, 1);
  t.is(u.stderr.trim().split('\n').length, 1, u.stderr);
  t.true(u.stderr.includes(id) && u.stderr.includes('/big'), u.stderr);
  t.deepEqual(await readdir(out), ['small']);
  await rename(`${chunk}.away`, chunk);
  const again = await zeroboot(['flist', 'unpack', fl, out]);
  t.is(again.code, 0, again.stderr);
  t.true((await readFile(path.join(out, 'big'))).equals(await readFile(path.join(src, 'big'))));
  t.deepEqual((await readdir(out)).sort(), ['big', 'small']);
});
