// Disk full in the middle of writes, for real: a helper process in its own
// mount namespace fills a small tmpfs with SETs until one fails (ENOSPC),
// then checks what is served while failed, after RELOAD with space freed,
// and after a reopen. Write-through and batched (the server's mode) both,
// then the real server process with pipelined clients.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../helpers/zdb-process.ts';

const run = promisify(execFile);

interface Outcome {
  failure: string;
  failureKind: string;
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
    if (mode === 'write-through') {
      t.is(r.failureKind, 'ZdbWriteFailure', 'the failed SET says the namespace is read-only');
      t.regex(r.failure, /read-only until RELOAD/);
    }
    t.true(r.acked > 5, `some writes acknowledged before the disk filled (${r.acked})`);
    t.regex(r.whileFull, /^refused: Namespace is read-only after a write error .*RELOAD/);
    t.deepEqual(r.beforeReload, [], 'while failed: every acknowledged key is served whole, nothing torn');
    t.regex(r.stillRefused, /^refused: .*read-only/, 'freeing space alone does not silently resume writing');
    t.deepEqual(r.afterReload, [], 'after RELOAD every acknowledged key is served whole');
    t.is(r.afterFree, 'stored');
    t.is(r.back, 'x');
    t.deepEqual(r.afterReopen, [], 'after a reopen every acknowledged key is served whole');
  });
}

test('disk full under the real server: acknowledged SETs are served, writes are refused until RELOAD, then work again', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zdb-full-server-'));
  const port = await freePort();
  const cli = fileURLToPath(new URL('../../cli/zeroboot.ts', import.meta.url));
  const proc = spawn(
    'unshare',
    [
      '-m',
      'sh',
      '-c',
      'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" --disable-warning=ExperimentalWarning "$3" zdb --listen 127.0.0.1 --port "$4" --data "$1/data" --index "$1/index" --admin adminpw',
      'sh',
      dir,
      process.execPath,
      cli,
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const clients: Redis[] = [];
  t.teardown(async () => {
    for (const c of clients) c.disconnect();
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const started = Date.now();
  while (!out.includes('listening on')) {
    if (proc.exitCode !== null || Date.now() - started > 15000) throw new Error(`zdb did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const client = (): Redis => {
    const r = new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    clients.push(r);
    return r;
  };
  // the server's tmpfs, seen through its mount namespace: most of it taken by a filler
  const mounted = `/proc/${proc.pid}/root${dir}`;
  await writeFile(path.join(mounted, 'filler'), Buffer.alloc(640 * 1024, 1));

  const value = (i: number): string => `${i}:`.padEnd(4000 + ((i * 7919) % 12000), String.fromCharCode(97 + (i % 26)));
  const acked = new Map<string, string>();
  let failure = '';
  const writer = client();
  for (let round = 0; failure === '' && round < 500; round++) {
    // pipelined like a busy client: the batch shares one write and one flush
    await Promise.all(
      Array.from({ length: 8 }, (_, j) => {
        const key = `k${round * 8 + j}`;
        const v = value(round * 8 + j);
        return writer.call('SET', key, v).then(
          () => void acked.set(key, v),
          (e: Error) => void (failure ||= e.message),
        );
      }),
    );
  }
  t.not(failure, '', 'the disk filled up (the premise of the test)');
  t.true(acked.size > 5, `some SETs acknowledged first (${acked.size})`);

  const r = client();
  t.regex(await r.call('SET', 'after', 'x').then(String, (e: Error) => e.message), /read-only after a write error .*ENOSPC.*RELOAD/);
  const servedWhileFailed = await Promise.all([...acked].map(async ([k, v]) => (await r.call('GET', k)) === v));
  t.true(servedWhileFailed.every(Boolean), 'every acknowledged key is served whole while failed');
  // the failed write is counted where the reference reports it
  const nsinfo = String(await r.call('NSINFO', 'default'));
  t.regex(nsinfo, /stats_data_io_errors: 1\n/);
  t.regex(nsinfo, /stats_data_io_error_last: [1-9]\d+\n/);
  t.regex(nsinfo, /stats_index_io_errors: 0\n/);
  const info = String(await r.call('INFO'));
  t.regex(info, /data_disk_write_failed: 1\n/);
  t.regex(info, /index_disk_write_failed: 0\n/);

  await rm(path.join(mounted, 'filler'));
  const a = client();
  t.is(await a.call('AUTH', 'adminpw'), 'OK');
  t.is(await a.call('RELOAD', 'default'), 'OK');
  const servedAfterReload = await Promise.all([...acked].map(async ([k, v]) => (await a.call('GET', k)) === v));
  t.true(servedAfterReload.every(Boolean), 'every acknowledged key is served whole after RELOAD');
  t.is(await a.call('SET', 'after', 'x'), 'after');
  t.is(await a.call('GET', 'after'), 'x');
});
