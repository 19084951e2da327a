// Restarts and crashes with real processes: kill -9 in the middle of a
// pipelined write stream (with and without --sync) then restart: every
// acknowledged write is served. SIGINT/SIGTERM exit codes, --background with
// --logfile, --dump, --rotate, and the refusals at open.
import test from 'ava';
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startZdb, removeDir, tempDir, freePort, runZdbProcess, type ZdbProcess } from '../helpers/zdb-process.ts';

const dirs: string[] = [];
const procs: ZdbProcess[] = [];
const clients: Redis[] = [];
const pids: number[] = [];

function client(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

async function start(extra: string[], dir?: string): Promise<ZdbProcess> {
  const p = await startZdb(extra, { dir });
  procs.push(p);
  if (!dir) dirs.push(p.dir);
  return p;
}

test.after.always(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(dirs.map(removeDir));
});

/**
 * Pipelines SETs and kills the server once `minAcked` were acknowledged (a
 * count, not a time: a loaded machine may answer slowly), with writes in
 * flight; returns the keys whose SET was acknowledged.
 */
async function writeUntilKilled(z: ZdbProcess, minAcked: number): Promise<Map<string, string>> {
  const c = client(z.port);
  const acked = new Map<string, string>();
  let stop = false;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const batch = Array.from({ length: 16 }, (_, j) => {
        const key = `w${w}-${i}-${j}`;
        const value = `${key}:${'v'.repeat((i * 16 + j) % 300)}`;
        return c.call('SET', key, value).then(
          () => void acked.set(key, value),
          () => (stop = true),
        );
      });
      await Promise.all(batch);
    }
  });
  const deadline = Date.now() + 120000;
  while (acked.size < minAcked && !stop && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await z.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  return acked;
}

async function assertServed(t: import('ava').ExecutionContext, port: number, acked: Map<string, string>): Promise<void> {
  const c = client(port);
  const keys = [...acked.keys()];
  let bad = 0;
  for (let i = 0; i < keys.length; i += 1000) {
    const slice = keys.slice(i, i + 1000);
    const got = (await c.call('MGET', ...slice)) as (string | null)[];
    slice.forEach((k, j) => {
      if (got[j] !== acked.get(k)) bad++;
    });
  }
  t.is(bad, 0, `${bad} of ${keys.length} acknowledged writes lost`);
}

for (const sync of [true, false]) {
  test(`kill -9 mid-write${sync ? ' with --sync' : ''}: after restart every acknowledged write is served`, async (t) => {
    const flags = sync ? ['--sync', '--datasize', '524288'] : ['--datasize', '524288'];
    const first = await start(flags);
    const acked = await writeUntilKilled(first, 500);
    t.true(acked.size > 100, `only ${acked.size} writes acknowledged`);
    t.log(`${acked.size} writes acknowledged before kill -9`);
    const second = await start(flags, first.dir);
    await assertServed(t, second.port, acked);
    t.is(await client(second.port).call('SET', 'after-crash', 'ok'), 'after-crash');
  });
}

test('SIGINT and SIGTERM stop with 128 + signal; data is back after restart', async (t) => {
  const z = await start(['--admin', 'pw']);
  const c = client(z.port);
  await c.call('AUTH', 'pw');
  await c.call('NSNEW', 'kept');
  await c.call('SELECT', 'kept');
  await c.call('SET', 'a', '1');
  t.is(await z.kill('SIGINT'), 130);
  const z2 = await start(['--admin', 'pw'], z.dir);
  const c2 = client(z2.port);
  await c2.call('SELECT', 'kept');
  t.is(await c2.call('GET', 'a'), '1');
  t.is(await z2.kill('SIGTERM'), 143);
});

test('--background detaches once listening and logs to --logfile', async (t) => {
  const dir = await tempDir();
  dirs.push(dir);
  const port = await freePort();
  const logfile = path.join(dir, 'zdb.log');
  // Whatever the assertions say, no detached server outlives the test: find it by its unique data directory.
  t.teardown(async () => {
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(path.join(dir, 'd'))) {
        try {
          process.kill(Number(entry), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
  const parent = runZdbProcess(['--background', '--logfile', logfile, '--listen', '127.0.0.1', '--port', String(port), '--data', path.join(dir, 'd'), '--index', path.join(dir, 'i')]);
  t.is(await parent.exited, 0);
  const m = /forking to background \(pid: (\d+)\)/.exec(parent.output());
  t.truthy(m, parent.output());
  const pid = Number(m![1]);
  pids.push(pid);
  const c = client(port);
  t.is(await c.call('PING'), 'PONG');
  t.regex(await readFile(logfile, 'utf8'), /listening on tcp:\/\/127\.0\.0\.1/);
  process.kill(pid, 'SIGTERM');
});

test('--dump prints every namespace and entry, then exits', async (t) => {
  const z = await start([]);
  const c = client(z.port);
  await c.call('SET', 'dumped-key', 'xyz');
  await c.call('SET', Buffer.from([0, 1]), 'bin');
  await z.kill('SIGTERM');
  const d = runZdbProcess(['--dump', '--data', z.dataDir, '--index', z.indexDir]);
  t.is(await d.exited, 0);
  t.regex(d.output(), /namespace: default, mode: userkey, entries: 2/);
  t.regex(d.output(), /key: dumped-key, size: 3/);
  t.regex(d.output(), /key: 0x0001, size: 3/);
});

test('--rotate forces a new data file after the given seconds', async (t) => {
  const z = await start(['--rotate', '1']);
  const c = client(z.port);
  await c.call('SET', 'r1', 'x');
  await new Promise((r) => setTimeout(r, 1200));
  await c.call('SET', 'r2', 'y');
  const files = (await readdir(path.join(z.dataDir, 'default'))).filter((f) => /^d\d+$/.test(f));
  t.true(files.length >= 2, files.join(','));
  t.is(await c.call('GET', 'r1'), 'x');
});

test('refusals at open: the legacy layout, and a user-mode dataset with --mode seq', async (t) => {
  const dir = await tempDir();
  dirs.push(dir);
  const legacy = path.join(dir, 'legacy');
  // 0-db v1 kept zdb-index-NNNNN files (the header bytes do not matter: the name is refused)
  await mkdir(path.join(legacy, 'index', 'default'), { recursive: true });
  await writeFile(path.join(legacy, 'index', 'default', 'zdb-index-00000'), Buffer.alloc(27));
  const a = runZdbProcess(['--port', String(await freePort()), '--data', path.join(legacy, 'data'), '--index', path.join(legacy, 'index')]);
  t.is(await a.exited, 1);
  t.regex(a.output(), /cannot open database/);

  const z = await start([]);
  await client(z.port).call('SET', 'u', 'v');
  await z.kill('SIGTERM');
  const b = runZdbProcess(['--mode', 'seq', '--port', String(await freePort()), '--data', z.dataDir, '--index', z.indexDir]);
  t.is(await b.exited, 1);
  t.regex(b.output(), /cannot open database/);
});
