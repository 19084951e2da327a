// The base URL iPXE scripts point at (publicUrl, the bound address, the Host
// a client used on a wildcard bind) and the connection timeouts: keep-alive,
// whole request, and idle. Real sockets on loopback; timings are checked
// against generous bounds (a loaded 2-core machine stretches timers).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import { silentLogger } from '../../boot/log.ts';
import { startHttpServer } from '../../boot/http/index.ts';
import type { HttpServerOptions } from '../../boot/http/index.ts';

const MAC = '52:54:00:00:b0:01';

async function server(t: ExecutionContext, over: Partial<HttpServerOptions> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-http-base-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'k'));
  await writeFile(path.join(dir, 'k/vmlinuz'), 'kernel');
  await writeFile(path.join(dir, 'k/initrd.img'), 'initrd');
  const s = await startHttpServer({
    store: new MountedStore([{ prefix: '', dir }]),
    selector: createSelector([{ name: 'p', kernel: 'k/vmlinuz', initrd: ['k/initrd.img'], args: {} }], [], [{ mac: MAC, profile: 'p' }]),
    timeline: new BootTimeline(),
    log: silentLogger,
    host: '127.0.0.1',
    port: 0,
    ...over,
  });
  t.teardown(() => s.close());
  return s;
}

/** One request on a fresh connection (Connection: close); returns status line and body. */
function get(port: number, target: string, host: string): Promise<{ status: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('end', () => {
      const end = data.indexOf('\r\n\r\n');
      resolve({ status: data.split('\r\n')[0], body: data.slice(end + 4) });
    });
    s.on('error', reject);
    s.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

test('publicUrl: server.url and every script URL use it (trailing slash dropped), whatever Host the client sent', async (t) => {
  const s = await server(t, { publicUrl: 'http://boot.example.net:8080/zb/' });
  t.is(s.url, 'http://boot.example.net:8080/zb');
  const chain = await get(s.port, '/boot.ipxe', 'other.host:1');
  t.regex(chain.status, / 200 /);
  t.regex(chain.body, / http:\/\/boot\.example\.net:8080\/zb\/ipxe\?mac=\$\{/);
  const script = await get(s.port, `/ipxe?mac=${MAC}`, 'other.host:1');
  t.regex(script.body, / http:\/\/boot\.example\.net:8080\/zb\/k\/vmlinuz\?mac=52-54-00-00-b0-01/);
  t.regex(script.body, / http:\/\/boot\.example\.net:8080\/zb\/k\/initrd\.img\?mac=52-54-00-00-b0-01/);
  t.notRegex(script.body, /other\.host/);
});

test('a bad publicUrl is refused at start with the rule it broke', async (t) => {
  const e = await t.throwsAsync(server(t, { publicUrl: 'ftp://boot.example.net/' }));
  t.regex(e?.message ?? '', /must be http\(s\):\/\/host/);
});

test('bound to a specific address: scripts use it and ignore the Host header', async (t) => {
  const s = await server(t);
  t.is(s.url, `http://127.0.0.1:${s.port}`);
  const chain = await get(s.port, '/boot.ipxe', 'spoofed.example:9999');
  t.regex(chain.body, new RegExp(` http://127\\.0\\.0\\.1:${s.port}/ipxe\\?mac=`));
});

test('bound to the wildcard address: scripts use the Host the client reached us by, unless it is not a plain host[:port]', async (t) => {
  const s = await server(t, { host: '0.0.0.0' });
  t.is(s.url, `http://127.0.0.1:${s.port}`);
  const byName = await get(s.port, `/ipxe?mac=${MAC}`, 'pxe.lan:8088');
  t.regex(byName.body, / http:\/\/pxe\.lan:8088\/k\/vmlinuz\?/);
  const byV6 = await get(s.port, '/boot.ipxe', '[fd00::1]:80');
  t.regex(byV6.body, / http:\/\/\[fd00::1\]:80\/ipxe\?mac=/);
  // A Host that could smuggle script text falls back to the bound address.
  const hostile = await get(s.port, '/boot.ipxe', 'x;shell');
  t.regex(hostile.body, new RegExp(` http://127\\.0\\.0\\.1:${s.port}/ipxe\\?mac=`));
  t.notRegex(hostile.body, /shell/);
});

/** Milliseconds from `start` until the server closes `s` (undefined if still open after `capMs`). */
function closedWithin(s: Socket, start: number, capMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const cap = setTimeout(() => {
      s.destroy();
      resolve(undefined);
    }, capMs);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(cap);
      resolve(Date.now() - start);
    });
    s.resume();
  });
}

test('keep-alive: a connection left idle after a response is closed after keepAliveMs', async (t) => {
  const s = await server(t, { timeouts: { keepAliveMs: 1500 } });
  const sock = connect(s.port, '127.0.0.1');
  let data = '';
  const answered = new Promise<number>((resolve) => sock.on('data', (d) => {
    data += d.toString('latin1');
    if (data.includes('\r\n\r\n')) resolve(Date.now());
  }));
  sock.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
  const closed = closedWithin(sock, 0, 30_000);
  const at = await answered;
  const closedAt = await closed;
  t.regex(data, /^HTTP\/1\.1 200/);
  t.notRegex(data, /Connection: close/i, 'the response keeps the connection');
  t.not(closedAt, undefined, 'still open after 30 s');
  const after = closedAt! - at;
  t.true(after >= 1300 && after < 10_000, `closed ${after} ms after the response, keepAliveMs 1500`);
});

test('whole request: a body dripped in slower than requestMs allows is cut (408), though every drip is within the idle limit and the headers came at once', async (t) => {
  const s = await server(t, { timeouts: { requestMs: 2500, headersMs: 1000, idleMs: 60_000 } });
  const start = Date.now();
  const sock = connect(s.port, '127.0.0.1');
  let data = '';
  sock.on('data', (d) => (data += d.toString('latin1')));
  sock.write('PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
  const drip = setInterval(() => sock.writable && sock.write('x'), 200);
  const after = await closedWithin(sock, start, 30_000);
  clearInterval(drip);
  t.not(after, undefined, 'the drip went on for 30 s');
  t.true(after! >= 2300 && after! < 15_000, `closed after ${after} ms with requestMs 2500`);
  t.regex(data, /HTTP\/1\.1 (408|405)/, 'an answer before the close');
});

test('idle: a connection that never sends a byte is closed after idleMs, well before the header timeout', async (t) => {
  const s = await server(t, { timeouts: { idleMs: 2000, headersMs: 60_000, requestMs: 120_000 } });
  const start = Date.now();
  const sock = connect(s.port, '127.0.0.1');
  const after = await closedWithin(sock, start, 30_000);
  t.not(after, undefined, 'still open after 30 s');
  // Checked once a second, so up to about a second late (more on a loaded machine).
  t.true(after! >= 1800 && after! < 15_000, `closed after ${after} ms with idleMs 2000`);
});
