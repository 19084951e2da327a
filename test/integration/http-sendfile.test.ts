// Store files sent by sendfile(2) (boot/http/sendfile.ts and its addon),
// against curl and raw sockets on loopback: bodies byte for byte (whole,
// ranges, multipart, keep-alive), clients that never read hold no copy
// buffers and slow nobody down, the stall and idle limits still see the
// bytes, and the copy path takes over for TLS, a missing addon and a file
// shorter than its entry says.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileEntry, MountedStore } from '../../boot/store.ts';
import { silentLogger } from '../../boot/log.ts';
import type { Logger } from '../../boot/log.ts';
import { bufferBudget, LARGE_BUFFER_BUDGET, serveEntry } from '../../boot/http/index.ts';
import type { HttpServerOptions } from '../../boot/http/index.ts';
import { FileSender, loadSendfileAddon } from '../../boot/http/sendfile.ts';
import type { SendfileAddon } from '../../boot/http/sendfile.ts';

const BIG = 24 * 1024 * 1024;
import { startStoreServer } from '../helpers/http-store-server.ts';

let dir = '';
let big: Buffer;
let seq = 0;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-http-sendfile-'));
  big = randomBytes(BIG);
  await writeFile(path.join(dir, 'big.bin'), big);
  await writeFile(path.join(dir, 'small.bin'), randomBytes(1000));
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The real addon, counting the transfers it starts (so a test knows which path served it). */
function countingSender(): { sender: FileSender; starts(): number } {
  const loaded = loadSendfileAddon();
  if (!('addon' in loaded)) throw new Error(`the sendfile addon is not built: ${loaded.missing}`);
  const real = loaded.addon;
  let starts = 0;
  const addon: SendfileAddon = {
    start: (...args) => {
      starts++;
      return real.start(...args);
    },
    sent: (t) => real.sent(t),
    cancel: (t) => real.cancel(t),
  };
  return { sender: new FileSender(addon), starts: () => starts };
}

const server = (t: { teardown(fn: () => Promise<void>): void }, extra: Partial<HttpServerOptions>) => startStoreServer(t, dir, extra);

interface Curl {
  code: number;
  status: number;
  body: Buffer;
  connects: number;
}

/** curl's exit code, the last status, the body file's bytes, the connections it opened. */
function curl(args: string[], maxTime = 120): Promise<Curl> {
  const out = path.join(dir, `body${seq++}`);
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(maxTime), '-o', out, '-w', '%{http_code} %{num_connects}\\n', ...args], async (err, stdout) => {
      const lines = stdout.trim().split('\n');
      const [status, connects] = (lines.at(-1) ?? '0 0').split(' ').map(Number);
      const body = await readFile(out).catch(() => Buffer.alloc(0));
      await rm(out, { force: true });
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, status, body, connects: lines.map((l) => Number(l.split(' ')[1])).reduce((a, b) => a + b, 0) || connects });
    });
  });
}

test.serial('whole files and ranges are byte for byte what the file holds, through sendfile', async (t) => {
  const { sender, starts } = countingSender();
  const s = await server(t, { sendfile: sender });
  const url = `${s.url}/big.bin`;
  const whole = await curl([url]);
  t.is(whole.status, 200);
  t.true(whole.body.equals(big), 'the whole file differs');
  const cases: [string, number, number][] = [
    ['bytes=1048576-3145727', 1048576, 3145727],
    ['bytes=100-', 100, BIG - 1],
    ['bytes=-5000', BIG - 5000, BIG - 1],
    ['bytes=7-7', 7, 7],
  ];
  for (const [range, start, end] of cases) {
    const r = await curl(['-H', `Range: ${range}`, url]);
    t.is(r.status, 206, range);
    t.true(r.body.equals(big.subarray(start, end + 1)), `${range}: ${r.body.length} bytes, not the range`);
  }
  // Two ranges: multipart, the heads written by Node between the file parts sendfile sends.
  const multi = await curl(['-H', 'Range: bytes=0-99,5000000-5999999', url]);
  t.is(multi.status, 206);
  const text = multi.body.toString('latin1');
  const boundary = /^--(\S+)\r\n/.exec(text)?.[1];
  t.truthy(boundary);
  const parts = text.split(`--${boundary}`).slice(1, -1).map((p) => Buffer.from(p.slice(p.indexOf('\r\n\r\n') + 4).replace(/\r\n$/, ''), 'latin1'));
  t.deepEqual(parts.map((p) => p.length), [100, 1_000_000]);
  t.true(parts[0].equals(big.subarray(0, 100)) && parts[1].equals(big.subarray(5000000, 6000000)), 'a multipart part differs');
  // Keep-alive: two downloads on one connection, the second after sendfile ended the first.
  const twice = await curl([url, '-o', path.join(dir, 'second'), `${url}?again`]);
  const second = await readFile(path.join(dir, 'second'));
  t.true(twice.body.equals(big) && second.equals(big), 'a keep-alive download differs');
  t.is(twice.connects, 1, 'curl needed a second connection');
  t.true(starts() >= 8, `sendfile started ${starts()} transfers`);
});

test.serial('a short file through sendfile leaves at once: the socket is corked only while the file goes out (a tail held by TCP_CORK waits 200 ms)', async (t) => {
  const { sender, starts } = countingSender();
  const s = await server(t, { sendfile: sender });
  const urls = Array.from({ length: 10 }, (_, i) => `${s.url}/small.bin?${i}`);
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
    execFile('curl', ['-sS', '--max-time', '60', ...urls.flatMap((u) => ['-o', '/dev/null', u]), '-w', '%{time_total} %{num_connects}\\n'], (e, stdout) => (e ? reject(e) : resolve({ stdout }))),
  );
  const lines = stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
  t.is(lines.length, 10);
  t.is(lines.reduce((n, [, c]) => n + c, 0), 1, 'one keep-alive connection');
  t.true(starts() >= 10, `sendfile started ${starts()} transfers`);
  const times = lines.map(([s]) => s * 1000).sort((a, b) => a - b);
  t.true(times[5] < 150, `median ${times[5].toFixed(0)} ms per request: ${times.map((x) => x.toFixed(0)).join(' ')}`);
});

/**
 * `n` connections asking for `target` that never read (python: a 4 KiB
 * receive buffer, set before connecting, so the window stays small; a
 * paused Node socket would take the whole file into loopback's buffers).
 * Resolves once all requests are sent; stop() ends them (by pid).
 */
async function nonReaders(port: number, target: string, n: number): Promise<{ stop(): void }> {
  const script = `
import socket, sys
held = []
for i in range(${n}):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('127.0.0.1', ${port}))
    s.sendall(b'GET ${target} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
    held.append(s)
print('sent', flush=True)
sys.stdin.read()
`;
  const py = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    py.stdout.once('data', () => resolve());
    py.once('exit', (code) => reject(new Error(`python exited ${code}`)));
  });
  return { stop: () => process.kill(py.pid!) };
}

/** GET `target` bytes 0..length-1 reading at most 64 KiB per 20 ms through a 64 KiB receive buffer; the body. */
async function slowRead(port: number, target: string, length: number): Promise<Buffer> {
  const script = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect(('127.0.0.1', ${port}))
s.sendall(b'GET ${target} HTTP/1.1\\r\\nHost: x\\r\\nRange: bytes=0-${length - 1}\\r\\n\\r\\n')
data = b''
while True:
    got = s.recv(65536)
    if not got:
        break
    data += got
    end = data.find(b'\\r\\n\\r\\n')
    if end >= 0 and len(data) - end - 4 >= ${length}:
        break
    time.sleep(0.02)
sys.stdout.buffer.write(data[data.find(b'\\r\\n\\r\\n') + 4:])
`;
  const py = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  py.stdout.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((resolve) => py.once('close', resolve));
  return Buffer.concat(chunks);
}

async function until(cond: () => boolean, deadlineMs: number): Promise<boolean> {
  for (const end = Date.now() + deadlineMs; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (cond()) return true;
  return cond();
}

test.serial('clients that never read hold no copy buffers and do not slow another download', async (t) => {
  const { sender, starts } = countingSender();
  const s = await server(t, { sendfile: sender, limits: { sendStallMs: 0, maxPerAddress: 0 }, timeouts: { idleMs: 120_000 } });
  const before = process.memoryUsage().external;
  const stalled = await nonReaders(s.port, '/big.bin', 40);
  t.teardown(() => stalled.stop());
  const limit = 6 * 2 ** 20;
  // Ready when all 40 are under way by sendfile, or (the copy path) when their buffers show.
  t.true(await until(() => starts() >= 40 || process.memoryUsage().external - before > limit, 60_000), `only ${starts()} transfers started`);
  const grown = process.memoryUsage().external - before;
  t.log(`40 stalled downloads: external memory (buffers) grew ${(grown / 2 ** 20).toFixed(1)} MiB`);
  // The copy path holds two buffers per download (256 KiB each while the budget lasts): 20 MiB here.
  t.true(grown < limit, `external memory (buffers) grew ${grown} bytes`);
  const t0 = Date.now();
  const other = await curl([`${s.url}/big.bin`], 60);
  t.log(`a reader beside them: ${Date.now() - t0} ms for ${BIG} bytes`);
  t.true(other.body.equals(big), 'the download beside the stalled ones differs');
});

test.serial('a stalled sendfile download is cut by the send-stall timeout', async (t) => {
  const { sender, starts } = countingSender();
  const s = await server(t, { sendfile: sender, limits: { sendStallMs: 1500 }, timeouts: { idleMs: 120_000 } });
  const mac = '52:54:00:00:07:01';
  const t0 = Date.now();
  const stalled = await nonReaders(s.port, `/big.bin?mac=${mac}`, 1);
  t.teardown(() => stalled.stop());
  // The download is recorded when the server stops it: a stalled one only when the connection is cut.
  t.true(await until(() => s.timeline.events(mac).length > 0, 20_000), 'still connected after 20 s');
  const ev = s.timeline.events(mac).at(-1)!;
  t.regex(ev.reason ?? '', /closed the connection/);
  t.true((ev.detail!.bytes as number) < BIG);
  t.true(Date.now() - t0 >= 1400, `cut after ${Date.now() - t0} ms, before the stall timeout`);
  t.is(starts(), 1);
});

test.serial('a slow but steady sendfile download outlives the idle limit', async (t) => {
  const { sender, starts } = countingSender();
  const s = await server(t, { sendfile: sender, limits: { sendStallMs: 1500 }, timeouts: { idleMs: 2000 } });
  // 8 MiB at about 1 MiB/s: the kernel's send buffer (4 MiB at most) cannot take it all, so sendfile
  // waits on the socket for seconds, longer than the idle limit, while Node's own counters stand still.
  const t1 = Date.now();
  const slow = await slowRead(s.port, '/big.bin', 8 << 20);
  t.log(`the slow download took ${Date.now() - t1} ms`);
  t.true(slow.equals(big.subarray(0, 8 << 20)), `the slow download got ${slow.length} bytes, not the range`);
  t.is(starts(), 1);
});

test.serial('TLS sockets get the copy path, byte for byte', async (t) => {
  const { sender, starts } = countingSender();
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await new Promise<void>((resolve, reject) =>
    execFile('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], (e) => (e ? reject(e) : resolve())),
  );
  const store = new MountedStore([{ prefix: '', dir }]);
  const budget = bufferBudget(LARGE_BUFFER_BUDGET, sender);
  const https = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
    void store.open('big.bin').then((entry) => serveEntry(req, res, entry, budget));
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => https.close(() => r())));
  const port = (https.address() as { port: number }).port;
  const r = await curl(['-k', `https://127.0.0.1:${port}/big.bin`]);
  t.is(r.status, 200);
  t.true(r.body.equals(big), 'the TLS download differs');
  t.is(starts(), 0, 'sendfile wrote to a TLS socket');
});

test.serial('without the addon, the server says so once and copies', async (t) => {
  const warnings: string[] = [];
  const log: Logger = { ...silentLogger, warn: (m: string) => warnings.push(m) };
  t.is(FileSender.open(true, log, () => ({ missing: 'Cannot find module sendfile.node' })), undefined);
  t.is(warnings.length, 1);
  t.regex(warnings[0], /sendfile addon not built/);
  t.is(FileSender.open(false, log), undefined);
  t.is(warnings.length, 1);
});

test.serial('a file shorter than its entry says: the connection is cut after the bytes there are', async (t) => {
  const { sender, starts } = countingSender();
  const file = path.join(dir, 'short.bin');
  await writeFile(file, big.subarray(0, 3 * 1024 * 1024));
  const budget = bufferBudget(LARGE_BUFFER_BUDGET, sender);
  const http = createServer((req, res) => {
    void open(file, 'r').then((fh) => serveEntry(req, res, fileEntry('short.bin', { size: 4 * 1024 * 1024, mtime: new Date() }, '"x"', async () => fh, () => fh.close()), budget));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => http.close(() => r())));
  const r = await curl([`http://127.0.0.1:${(http.address() as { port: number }).port}/short.bin`], 30);
  t.is(r.code, 18, `curl exit ${r.code} (18: transfer closed with bytes outstanding)`);
  t.true(r.body.equals(big.subarray(0, 3 * 1024 * 1024)), `got ${r.body.length} bytes`);
  t.is(starts(), 1);
});
