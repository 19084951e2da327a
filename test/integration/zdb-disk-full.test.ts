// Disk full in the middle of writes, for real: a helper process in its own
// mount namespace fills a small tmpfs with SETs until one fails (ENOSPC),
// then checks what is served while failed, after RELOAD with space freed,
// and after a reopen. Write-through and batched (the server's mode) both.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface Outcome {
  failure: string;
  acked: number;
  whileFull: string;
  beforeReload: string[];
  stillRefused: string;
  afterReload: string[];
  afterFree: string;
  back: string | undefined;
  afterReopen: string[];
}

async function fillDisk(mode: 'batched' | 'write-through'): Promise<Outcome> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zdb-full-'));
  try {
    const { stdout } = await run('unshare', [
      '-m',
      'sh',
      '-c',
      'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" --disable-warning=ExperimentalWarning "$3" "$1" "$4"',
      'sh',
      dir,
      process.execPath,
      fileURLToPath(new URL('../helpers/zdb-disk-full.ts', import.meta.url)),
      mode,
    ]);
    return JSON.parse(stdout) as Outcome;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const mode of ['write-through', 'batched'] as const) {
  test(`disk full (${mode}): acknowledged keys survive whole, the namespace refuses writes until RELOAD, then writes work again`, async (t) => {
    const r = await fillDisk(mode);
    t.regex(r.failure, /ENOSPC/, 'a write must have failed on the full disk (the premise of the test)');
    t.true(r.acked > 5, `some writes acknowledged before the disk filled (${r.acked})`);
    t.regex(r.whileFull, /^refused: Namespace is read-only after a write error .*RELOAD/);
    t.deepEqual(r.beforeReload, [], 'nothing torn is served while failed');
    t.regex(r.stillRefused, /^refused: .*read-only/, 'freeing space alone does not silently resume writing');
    t.deepEqual(r.afterReload, [], 'after RELOAD every acknowledged key is served whole');
    t.is(r.afterFree, 'stored');
    t.is(r.back, 'x');
    t.deepEqual(r.afterReopen, [], 'after a reopen every acknowledged key is served whole');
  });
}
