// The HTTP server as its own process, watched from outside through
// /proc/<pid>/fd: connections that die with responses still queued must not
// leave files open.
import test from 'ava';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForOutput } from '../helpers/netns.ts';

const entry = fileURLToPath(new URL('../../harness/http-server-entry.ts', import.meta.url));
let dir = '';
let child: ChildProcess | undefined;
let port = 0;

const openFds = async () => (await readdir(`/proc/${child!.pid}/fd`)).length;

/** Polls until `ok(fds)` or the deadline; returns the last count. */
async function fdsUntil(ok: (n: number) => boolean, deadlineMs: number): Promise<number> {
  const end = Date.now() + deadlineMs;
  let n = await openFds();
  while (!ok(n) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    n = await openFds();
  }
  return n;
}

/** Sends `data` on a fresh connection and resolves when the server has closed it. */
function sendAndWaitClose(data: string): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.resume();
    s.write(data);
  });
}

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-http-leaks-'));
  await writeFile(path.join(dir, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
  await writeFile(path.join(dir, 'small.txt'), 'small\n');
  child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry, '--dir', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  port = Number(/port=(\d+)/.exec(await waitForOutput(child, /http ready .*port=\d+/, 60_000))![1]);
});

test.after.always(async () => {
  if (child?.pid && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    process.kill(child.pid, 'SIGTERM');
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.serial('pipelined GETs cut short by a CONNECT leave no file open', async (t) => {
  // Warm up (lazy module loads, the store's first open), then take the baseline.
  await sendAndWaitClose('GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const before = await openFds();
  const GETS = 4;
  const CONNECTIONS = 25;
  const request = 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(GETS) + 'CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n';
  for (let i = 0; i < CONNECTIONS; i++) await sendAndWaitClose(request);
  // Each queued download used to keep its file open for good (GETS - 1 per connection).
  const after = await fdsUntil((n) => n <= before + 1, 15_000);
  t.true(after <= before + 1, `open fds: ${before} before, ${after} after ${CONNECTIONS} connections`);
  // Still serving.
  await sendAndWaitClose('GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
});

test.serial('a CONNECT that arrives while queued downloads are under way leaves no file open', async (t) => {
  await sendAndWaitClose('GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const before = await openFds();
  const CONNECTIONS = 25;
  for (let i = 0; i < CONNECTIONS; i++) {
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let got = 0;
      s.on('error', () => undefined);
      s.on('close', () => resolve());
      // The queued responses have opened their files by the time the first one flows.
      s.on('data', (d) => {
        if (got === 0) s.write('CONNECT x:1 HTTP/1.1\r\nHost: x\r\n\r\n');
        got += d.length;
      });
      s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4));
    });
  }
  const after = await fdsUntil((n) => n <= before + 1, 15_000);
  t.true(after <= before + 1, `open fds: ${before} before, ${after} after ${CONNECTIONS} connections`);
});
