// `flist pack` records chunks in the .fl only once they are on disk: the
// syscall order, seen from outside with strace, must show the store's
// filesystem synced (syncfs, run by `sync -f`) before the .fl is renamed
// into place. A pack that renamed first could leave, after a power cut, a
// .fl naming chunks the store never kept.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTrace, straceArgs } from '../helpers/syscall-trace.ts';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/zeroboot.ts');

test('flist pack syncs the dir store before the .fl that names its chunks is renamed into place', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-sync-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'a.bin'), randomBytes(700 * 1024));
  const store = path.join(dir, 'store');
  const out = path.join(dir, 'x.fl');
  const trace = path.join(dir, 'trace');
  const argv = [...straceArgs(trace, ['syncfs', 'rename', 'renameat', 'renameat2']), process.execPath, '--disable-warning=ExperimentalWarning', CLI, 'flist', 'pack', src, '-o', out, '--store', `dir://${store}`];
  const code = await new Promise<number>((resolve) => execFile(argv[0], argv.slice(1), { timeout: 120_000 }, (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0)));
  t.is(code, 0);
  const calls = await readTrace(trace);
  const synced = calls.findIndex((c) => c.name === 'syncfs' && c.target.startsWith(store) && /^0/.test(c.ret));
  const renamed = calls.findIndex((c) => c.name.startsWith('rename') && c.data.toString().includes(out));
  const chunkRenames = calls.filter((c) => c.name.startsWith('rename') && c.data.toString().includes(`${store}/`));
  t.true(chunkRenames.length >= 2, 'two chunks were written into the store');
  t.true(renamed >= 0, 'the .fl is renamed into place');
  t.true(synced >= 0 && synced < renamed, `syncfs of the store (${synced}) before the .fl rename (${renamed})`);
  t.true(chunkRenames.every((c) => calls.indexOf(c) < synced), 'every chunk was in place before the sync');
});
