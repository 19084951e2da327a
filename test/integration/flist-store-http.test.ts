// http(s):// against real servers on loopback: Python's http.server serving
// a dir store's folder (chunks written through dir:// read back through
// http://), and small Node servers that misbehave on purpose (a 500, no
// answer, an oversized body).
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitListening } from '../../harness/listening.ts';
import { StoreError, StoreReadOnlyError } from '../../flist/stores/errors.ts';
import { openStore } from '../../flist/stores/open.ts';

type T = { teardown(f: () => unknown): void };

async function tempRoot(t: T): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'flist-store-http-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

async function pythonServer(t: T, root: string): Promise<string> {
  const port = await freePort();
  const proc = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', root, String(port)], { stdio: 'ignore' });
  t.teardown(() => proc.kill('SIGKILL'));
  await waitListening(port, proc);
  return `http://127.0.0.1:${port}`;
}

async function nodeServer(t: T, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('chunks written through dir:// read back through http:// (python http.server), both layouts', async (t) => {
  const root = await tempRoot(t);
  const dir = openStore(`dir://${root}`);
  const ids = Array.from({ length: 30 }, () => randomBytes(32));
  const datas = ids.map(() => randomBytes(1 + Math.floor(Math.random() * 200_000)));
  await Promise.all(ids.map((id, i) => dir.put(id, datas[i])));
  // a flat layout (<base>/<hex>) is read too
  const flat = randomBytes(32);
  const flatData = randomBytes(5000);
  await writeFile(path.join(root, flat.toString('hex')), flatData);

  const base = await pythonServer(t, root);
  const store = openStore(`${base}/`);
  t.is(store.url, `${base}/`);
  const got = await Promise.all(ids.map((id) => store.get(id)));
  got.forEach((g, i) => t.true(g?.equals(datas[i]), `chunk ${i}`)); // not deepEqual: ava diffs big Buffers slowly
  t.deepEqual(await store.get(flat), flatData);
  t.true(await store.has(ids[0]));
  t.true(await store.has(flat));
  const missing = randomBytes(32);
  t.is(await store.get(missing), undefined);
  t.false(await store.has(missing));
  await t.throwsAsync(() => store.put(missing, Buffer.from('x')), { instanceOf: StoreReadOnlyError, message: `store ${base}/: this store is read-only` });
});

test('a status other than 200 or 404 is an error naming the URL and the chunk', async (t) => {
  const base = await nodeServer(t, (_req, res) => {
    res.statusCode = 500;
    res.end('boom');
  });
  const store = openStore(base);
  const id = randomBytes(32);
  const hex = id.toString('hex');
  const e = await t.throwsAsync(() => store.get(id), { instanceOf: StoreError });
  t.is(e!.message, `store ${base}: GET ${base}/${hex.slice(0, 2)}/${hex} for chunk ${hex}: answered 500 Internal Server Error`);
});

test('a server that does not answer is a timeout, not a hang', async (t) => {
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sockets: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const store = openStore(base, { http: { timeoutMs: 500 } });
  const started = Date.now();
  await t.throwsAsync(() => store.get(randomBytes(32)), { instanceOf: StoreError, message: /no answer within 500 ms/ });
  t.true(Date.now() - started < 30_000);
});

test('a body that is stalled midway is a timeout too', async (t) => {
  const base = await nodeServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.write(Buffer.alloc(10));
  });
  const store = openStore(base, { http: { timeoutMs: 500 } });
  await t.throwsAsync(() => store.get(randomBytes(32)), { instanceOf: StoreError, message: /did not arrive within 500 ms/ });
});

test('an answer larger than a chunk can be is refused, declared or streamed', async (t) => {
  const declared = await nodeServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(2 << 20) });
    res.end(Buffer.alloc(2 << 20));
  });
  await t.throwsAsync(() => openStore(declared).get(randomBytes(32)), { instanceOf: StoreError, message: /2097152 bytes is more than a chunk can be \(1048576\)/ });
  const streamed = await nodeServer(t, (_req, res) => {
    res.writeHead(200);
    for (let i = 0; i < 40; i++) res.write(Buffer.alloc(64 * 1024));
    res.end();
  });
  await t.throwsAsync(() => openStore(streamed).get(randomBytes(32)), { instanceOf: StoreError, message: /more than 1048576 bytes/ });
});

test('a refused connection names the URL and the errno', async (t) => {
  const port = await freePort();
  const id = randomBytes(32);
  await t.throwsAsync(() => openStore(`http://127.0.0.1:${port}`).get(id), { instanceOf: StoreError, message: new RegExp(`127.0.0.1:${port}/.*${id.toString('hex')}.*ECONNREFUSED`) });
});

test('credentials in the URL go as basic auth and never into messages', async (t) => {
  const root = await tempRoot(t);
  const id = randomBytes(32);
  const hex = id.toString('hex');
  await mkdir(path.join(root, hex.slice(0, 2)));
  await writeFile(path.join(root, hex.slice(0, 2), hex), 'chunk');
  const base = await nodeServer(t, (req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('u:s3cret').toString('base64')}`) {
      res.statusCode = 401;
      return res.end();
    }
    res.end('chunk');
  });
  const host = base.slice('http://'.length);
  t.deepEqual(await openStore(`http://u:s3cret@${host}`).get(id), Buffer.from('chunk'));
  const e = await t.throwsAsync(() => openStore(`http://u:wrong@${host}`).get(id), { instanceOf: StoreError, message: /401/ });
  t.false(e!.message.includes('wrong'));
});
