// The boot storm's lean HTTP client (bench/storm-http.ts) against Node's
// HTTP server on loopback: the bench's figures are only as right as the
// bytes it counts. Every body framing, keep-alive reuse, a server that
// closes an idle connection, and the connection cap.
import test from 'ava';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { StormHttpClient } from '../../bench/storm-http.ts';

const BIG = randomBytes(3 << 20);

async function serve(t: import('ava').ExecutionContext, opts: { keepAliveTimeout?: number } = {}): Promise<{ base: string; server: Server; connections: () => number; inFlight: () => number }> {
  let connections = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('finish', () => inFlight--);
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/big') return res.end(BIG);
    if (url.pathname === '/chunked') {
      res.write('hello, ');
      res.write(BIG.subarray(0, 100_000));
      return setTimeout(() => res.end('world'), 10);
    }
    if (url.pathname === '/close') {
      res.setHeader('connection', 'close');
      res.removeHeader('transfer-encoding');
      res.socket!.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
      return res.socket!.end();
    }
    if (url.pathname === '/post') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      return req.on('end', () => res.end(`got ${Buffer.concat(chunks).toString()}`));
    }
    if (url.pathname === '/slow') return setTimeout(() => res.end('slow'), 50);
    res.statusCode = 404;
    res.end('no');
  });
  server.on('connection', () => connections++);
  if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, connections: () => connections, inFlight: () => maxInFlight };
}

test('Content-Length, chunked and close-delimited bodies are counted byte for byte; text is returned when asked', async (t) => {
  const { base } = await serve(t);
  const c = new StormHttpClient({ localAddress: '127.0.0.1', max: 4, idleMs: 5000 });
  t.teardown(() => c.destroy());
  t.like(await c.request(`${base}/big`, false), { status: 200, bytes: BIG.length });
  const chunked = await c.request(`${base}/chunked`, true);
  t.is(chunked.bytes, 7 + 100_000 + 5);
  t.true(chunked.text!.startsWith('hello, ') && chunked.text!.endsWith('world'));
  t.like(await c.request(`${base}/close`, true), { status: 200, text: 'until the end' });
  t.like(await c.request(`${base}/post`, true, '{"a":1}'), { status: 200, text: 'got {"a":1}' });
  t.like(await c.request(`${base}/nope`, true), { status: 404, text: 'no' });
});

test('one machine keeps its connection alive between requests', async (t) => {
  const { base, connections } = await serve(t);
  const c = new StormHttpClient({ localAddress: '127.0.0.1', max: 4, idleMs: 5000 });
  t.teardown(() => c.destroy());
  for (let i = 0; i < 5; i++) t.is((await c.request(`${base}/big`, false)).bytes, BIG.length);
  t.is(connections(), 1);
});

test('a connection the server closed while idle is replaced at once, not counted as a failure', async (t) => {
  const { base, connections } = await serve(t, { keepAliveTimeout: 50 });
  const c = new StormHttpClient({ localAddress: '127.0.0.1', max: 4, idleMs: 5000 });
  t.teardown(() => c.destroy());
  t.like(await c.request(`${base}/slow`, true), { text: 'slow' });
  // Node's server closes an idle connection about a second after its keepAliveTimeout.
  await new Promise((r) => setTimeout(r, 2000));
  t.like(await c.request(`${base}/slow`, true), { text: 'slow' });
  t.is(connections(), 2);
});

test('a kept connection the server drops as the next request goes out (the keep-alive race) is retried once on a new one', async (t) => {
  // Each connection answers its first request and drops the second unanswered.
  let connections = 0;
  const server = createTcpServer((s) => {
    connections++;
    let n = 0;
    s.on('data', () => (++n === 1 ? s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') : s.destroy()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const c = new StormHttpClient({ localAddress: '127.0.0.1', max: 1, idleMs: 5000 });
  t.teardown(() => c.destroy());
  t.like(await c.request(url, true), { text: 'ok' });
  t.like(await c.request(url, true), { text: 'ok' });
  t.is(connections, 2);
});

test('at most `max` requests are in flight at once per machine', async (t) => {
  const { base, inFlight } = await serve(t);
  const c = new StormHttpClient({ localAddress: '127.0.0.1', max: 2, idleMs: 5000 });
  t.teardown(() => c.destroy());
  const answers = await Promise.all(Array.from({ length: 8 }, () => c.request(`${base}/slow`, true)));
  t.true(answers.every((a) => a.text === 'slow'));
  t.is(inFlight(), 2);
});

test('a server that never answers fails the request after the idle time', async (t) => {
  const server = createServer(() => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const c = new StormHttpClient({ localAddress: '127.0.0.1', max: 1, idleMs: 200 });
  await t.throwsAsync(c.request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, true), { message: /no progress for 0.2 s/ });
});
