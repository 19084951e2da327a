// The RESP client library (zdb/resp/client.ts) against a real `zeroboot zdb`
// on loopback and on a unix socket: replies, pipelining, deadlines, refusals.
import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { RespClient, RespClosedError, RespConnectError, RespServerError, RespTimeoutError, type RespReply } from '../../zdb/resp/client.ts';
import { DEFAULT_REPLY_LIMITS } from '../../zdb/resp/client-reply.ts';
import { RespProtocolError } from '../../zdb/resp/parser.ts';
import { freePort, removeDir, startZdb, tempDir, type ZdbProcess } from '../helpers/zdb-process.ts';

const servers: ZdbProcess[] = [];
test.after.always(async () => {
  for (const s of servers) {
    s.proc.kill('SIGCONT');
    await s.kill('SIGKILL');
    await removeDir(s.dir);
  }
});

async function server(extra: string[] = [], opts: Parameters<typeof startZdb>[1] = {}): Promise<ZdbProcess> {
  const s = await startZdb(extra, opts);
  servers.push(s);
  return s;
}

const local = (s: ZdbProcess) => ({ host: '127.0.0.1', port: s.port });

test('commands return typed replies, error replies included, binary-safe', async (t) => {
  const s = await server();
  const c = await RespClient.connect(local(s));
  try {
    t.true((await c.ping()) >= 0);
    const value = Buffer.from([0, 13, 10, 255, 36]);
    t.deepEqual(await c.command(['SET', 'k', value]), { type: 'bulk', value: Buffer.from('k') });
    t.deepEqual(await c.command(['GET', Buffer.from('k')]), { type: 'bulk', value });
    t.deepEqual(await c.command(['GET', 'missing']), { type: 'bulk', value: null });
    t.deepEqual(await c.command(['NOSUCH']), { type: 'error', text: 'Command not supported' });
    t.true(c.open, 'an error reply leaves the connection usable');
    t.is((await c.command(['EXISTS', 'k'])).type, 'integer');
  } finally {
    c.close();
  }
});

test('pipelined commands get their own replies, in order, on TCP and on a unix socket', async (t) => {
  const dir = await tempDir();
  const sock = path.join(dir, 'zdb.sock');
  await server(['--socket', sock], { tcp: false, dir });
  const c = await RespClient.connect({ path: sock });
  try {
    const n = 300;
    const sets = await c.pipeline(Array.from({ length: n }, (_, i) => ['SET', `key${i}`, `value${i}`]));
    t.is(sets.length, n);
    // command() calls without awaiting each other are pipelined as well
    const gets = await Promise.all(Array.from({ length: n }, (_, i) => c.command(['GET', `key${n - 1 - i}`])));
    t.deepEqual(
      gets.map((r) => (r.type === 'bulk' ? r.value?.toString() : r.type)),
      Array.from({ length: n }, (_, i) => `value${n - 1 - i}`),
    );
    t.is(c.inFlight, 0);
  } finally {
    c.close();
  }
});

test('AUTH and SELECT helpers: refusals are RespServerError with the server text', async (t) => {
  const s = await server(['--admin', 'secret']);
  const c = await RespClient.connect(local(s));
  try {
    const e = await t.throwsAsync(c.auth('wrong'), { instanceOf: RespServerError });
    t.is(e!.reply, 'Access denied');
    await c.auth('secret');
    await c.command(['NSNEW', 'ns1']);
    await c.command(['NSSET', 'ns1', 'password', 'pw']);
    await t.throwsAsync(c.select('ns1', 'bad'), { instanceOf: RespServerError });
    await c.select('ns1', 'pw');
    await c.command(['SET', 'a', 'b']);
    t.deepEqual(await c.command(['DBSIZE']), { type: 'integer', value: 1n });
  } finally {
    c.close();
  }
});

test('a missed deadline fails every pending command with RespTimeoutError and closes the connection', async (t) => {
  const s = await server();
  const c = await RespClient.connect(local(s), { commandTimeoutMs: 30_000 });
  s.proc.kill('SIGSTOP');
  try {
    const first = c.command(['PING'], { timeoutMs: 300 });
    const second = c.command(['PING']);
    const e = await t.throwsAsync(first, { instanceOf: RespTimeoutError });
    t.regex(e!.message, /no reply to PING from 127\.0\.0\.1:\d+ within 300 ms; the connection was closed/);
    await t.throwsAsync(second, { instanceOf: RespTimeoutError }, 'a later reply would be taken for the wrong command');
    t.false(c.open);
    await t.throwsAsync(c.command(['PING']), { instanceOf: RespTimeoutError });
  } finally {
    s.proc.kill('SIGCONT');
    c.close();
  }
});

test('a server that goes away fails the pending command with RespClosedError', async (t) => {
  const s = await server();
  const c = await RespClient.connect(local(s));
  s.proc.kill('SIGSTOP');
  const pending = c.command(['PING']);
  await s.kill('SIGKILL');
  const e = await t.throwsAsync(pending, { instanceOf: RespClosedError });
  t.regex(e!.message, /connection to 127\.0\.0\.1:\d+ closed/);
});

test('a reply over the limits is refused and the connection closed', async (t) => {
  const s = await server();
  const writer = await RespClient.connect(local(s));
  const reader = await RespClient.connect(local(s), { limits: { ...DEFAULT_REPLY_LIMITS, maxBulk: 1000 } });
  try {
    await writer.command(['SET', 'small', Buffer.alloc(1000, 1)]);
    await writer.command(['SET', 'big', Buffer.alloc(1001, 1)]);
    t.is(((await reader.command(['GET', 'small'])) as Extract<RespReply, { type: 'bulk' }>).value?.length, 1000);
    const e = await t.throwsAsync(reader.command(['GET', 'big']), { instanceOf: RespProtocolError });
    t.regex(e!.message, /bulk reply of 1001 bytes, over the limit of 1000/);
    t.false(reader.open);
  } finally {
    writer.close();
    reader.close();
  }
});

test('connecting where nothing listens is a RespConnectError that says what to check', async (t) => {
  const port = await freePort();
  const e = await t.throwsAsync(RespClient.connect({ host: '127.0.0.1', port }), { instanceOf: RespConnectError });
  t.is(e!.message, `cannot connect to 127.0.0.1:${port} (ECONNREFUSED): is the server running and listening there?`);
  const missing = await t.throwsAsync(RespClient.connect({ path: '/nonexistent/zdb.sock' }), { instanceOf: RespConnectError });
  t.regex(missing!.message, /ENOENT/);
});

test('a connect that is never accepted ends with RespTimeoutError at the connect deadline', async (t) => {
  // A listener with a backlog of 0 that never accepts: its queue holds one connection, the next SYN is dropped.
  const py = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const port = Number(await new Promise<string>((resolve) => py.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))));
    const fillers: RespClient[] = [];
    // fill the accept queue (its exact size depends on the kernel)
    for (let i = 0; i < 4; i++) {
      const r = await RespClient.connect({ host: '127.0.0.1', port }, { connectTimeoutMs: 1000 }).catch((e: Error) => e);
      if (r instanceof RespTimeoutError) {
        t.regex(r.message, new RegExp(`no connection to 127\\.0\\.0\\.1:${port} within 1000 ms`));
        for (const f of fillers) f.close();
        return;
      }
      if (r instanceof Error) throw r;
      fillers.push(r);
    }
    for (const f of fillers) f.close();
    t.fail('every connect was accepted');
  } finally {
    py.kill('SIGKILL');
  }
});
