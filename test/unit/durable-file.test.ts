import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileDurably } from '../../lib/durable-file.ts';

test('writeFileDurably replaces the file with the given mode (also over a stale temporary file), and a failed write leaves no temporary file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zb-durable-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFileDurably(join(dir, 'a.json'), 'one', 0o600);
  await writeFileDurably(join(dir, 'a.json'), 'two', 0o600);
  t.is(await readFile(join(dir, 'a.json'), 'utf8'), 'two');
  t.is((await stat(join(dir, 'a.json'))).mode & 0o777, 0o600);
  // a temporary file a crash left, readable by all: the secret must still end up 0600
  await writeFile(join(dir, 'a.json.tmp'), 'stale', { mode: 0o644 });
  await writeFileDurably(join(dir, 'a.json'), 'three', 0o600);
  t.is((await stat(join(dir, 'a.json'))).mode & 0o777, 0o600);
  // a folder where the file should go: the rename fails after the temporary file was written
  await mkdir(join(dir, 'taken'));
  await t.throwsAsync(writeFileDurably(join(dir, 'taken'), 'x'));
  t.deepEqual((await readdir(dir)).sort(), ['a.json', 'taken']);
});
