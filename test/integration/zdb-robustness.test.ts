// Bad input against a real zdb process: malformed RESP, headers split into
// single bytes, oversized keys and payloads, 10,000 connections opening and
// closing. The client at fault gets the reference's error (and is dropped
// where the reference drops it); everyone else keeps being served.
import test from 'ava';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startZdb, removeDir, RawClient, type ZdbProcess } from '../helpers/zdb-process.ts';

let zdb: ZdbProcess;
const clients: Redis[] = [];

function client(): Redis {
  const r = new Redis({ port: zdb.port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

test.before(async () => {
  zdb = await startZdb();
});

test.after.always(async () => {
  for (const c of clients) c.disconnect();
  await zdb.kill('SIGKILL');
  await removeDir(zdb.dir);
});

for (const [input, reply] of [
  ['GARBAGE\r\n', 'Malformed request, array expected'],
  ['*0\r\n', 'Missing arguments'],
  ['*2\r\n:1\r\n', 'Malformed query string'],
  ['*1\r\n$4\r\nPINGxx', 'Malformed query string'],
  ['*99999\r\n', 'Too many arguments'],
  ['*1\r\n$-5\r\n', 'Malformed query string'],
]) {
  test(`malformed ${JSON.stringify(input)}: "-${reply}", disconnected, others unaffected`, async (t) => {
    const other = client();
    await other.call('PING');
    const raw = await RawClient.connect(zdb.port);
    raw.write(input);
    await raw.closed;
    t.is(raw.received().toString(), `-${reply}\r\n`);
    t.is(await other.call('PING'), 'PONG');
  });
}

test('a request sent one byte per segment is answered once complete', async (t) => {
  const raw = await RawClient.connect(zdb.port);
  raw.socket.setNoDelay(true);
  const req = Buffer.from('*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$10\r\n0123\r\n5678\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n');
  for (const b of req) {
    raw.write(Buffer.from([b]));
    await new Promise((r) => setTimeout(r, 1));
  }
  t.is(await raw.waitFor('5678\r\n'), '$5\r\nsplit\r\n$10\r\n0123\r\n5678\r\n');
  raw.close();
});

test('a 256-byte key is refused, 255 accepted, and the connection stays usable', async (t) => {
  const raw = await RawClient.connect(zdb.port);
  const cmd = (k: string) => `*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$1\r\nv\r\n`;
  raw.write(cmd('k'.repeat(256)) + cmd('k'.repeat(255)) + '*1\r\n$4\r\nPING\r\n');
  const text = await raw.waitFor('+PONG\r\n');
  t.is(text, `-Key too large\r\n$255\r\n${'k'.repeat(255)}\r\n+PONG\r\n`);
  raw.close();
});

test('an 8 MiB payload is stored and served; 10 MiB gets "Payload too big" and a disconnect', async (t) => {
  const c = client();
  const value = randomBytes(8 * 1024 * 1024);
  t.is(await c.call('SET', 'big8', value), 'big8');
  t.true(((await c.callBuffer('GET', 'big8')) as Buffer).equals(value));

  const raw = await RawClient.connect(zdb.port);
  raw.write(`*3\r\n$3\r\nSET\r\n$5\r\nbig10\r\n$${10 * 1024 * 1024}\r\n`);
  // the refusal comes on the header: the body is never waited for
  raw.write(randomBytes(1024 * 1024));
  await raw.closed;
  t.is(raw.received().toString(), '-Payload too big\r\n');
  t.is(await c.call('EXISTS', 'big10'), 0);
  t.is(await c.call('PING'), 'PONG');
});

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

test('a pipeline of GETs of a big value from a client that does not read keeps server memory bounded, and every reply arrives', async (t) => {
  const c = client();
  const value = randomBytes(256 * 1024);
  t.is(await c.call('SET', 'pipebig', value), 'pipebig');
  const count = 2000;
  const one = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
  const pid = zdb.proc.pid!;
  const base = rssBytes(pid);

  const socket = net.connect({ port: zdb.port, host: '127.0.0.1' });
  t.teardown(() => socket.destroy());
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.pause();
  // ~44 KiB of requests asking for ~512 MiB of replies
  socket.write(Buffer.concat(Array.from({ length: count }, () => Buffer.from('*2\r\n$3\r\nGET\r\n$7\r\npipebig\r\n'))));
  let peak = 0;
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 25));
    peak = Math.max(peak, rssBytes(pid));
  }

  // every reply, byte for byte, in order
  let received = 0;
  let mismatch = -1;
  const done = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length && mismatch < 0; ) {
        const at = (received + i) % one.length;
        const n = Math.min(one.length - at, d.length - i);
        if (!d.subarray(i, i + n).equals(one.subarray(at, at + n))) mismatch = received + i;
        i += n;
      }
      received += d.length;
      if (received >= count * one.length || mismatch >= 0) resolve();
    });
  });
  socket.resume();
  await done;
  t.is(mismatch, -1);
  t.is(received, count * one.length);
  t.true(peak - base < 128 * 1024 * 1024, `server RSS grew by ${Math.round((peak - base) / 1048576)} MiB`);
  t.is(await c.call('PING'), 'PONG');
});

test('10,000 connections opening and closing while another client keeps working', async (t) => {
  t.timeout(60_000);
  const worker = client();
  let ops = 0;
  let failures = 0;
  let stop = false;
  const work = (async () => {
    while (!stop) {
      try {
        const v = String(ops);
        await worker.call('SET', 'steady', v);
        if ((await worker.call('GET', 'steady')) !== v) failures++;
        ops++;
      } catch {
        failures++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  })();

  const TOTAL = 10_000;
  const PARALLEL = 100;
  let opened = 0;
  let refused = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const s = net.connect({ port: zdb.port, host: '127.0.0.1' });
      // read whatever comes back, or 'close' never fires
      s.resume();
      s.on('error', () => {
        refused++;
        resolve();
      });
      s.on('connect', () => {
        opened++;
        // half say something first, half hang up at once (some mid-request)
        if (i % 3 === 0) s.end('*1\r\n$4\r\nPING\r\n');
        else if (i % 3 === 1) s.end('*2\r\n$3\r\nGET\r\n$10\r\nhalf');
        else s.destroy();
      });
      s.on('close', () => resolve());
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < TOTAL) await one(next++);
    }),
  );
  stop = true;
  await work;
  t.is(refused, 0);
  t.is(opened, TOTAL);
  t.is(failures, 0);
  t.true(ops > 0);
  const info = (await worker.call('INFO')) as string;
  t.true(Number(/clients_lifetime: (\d+)/.exec(info)?.[1]) >= TOTAL);
  t.is(await worker.call('PING'), 'PONG');
});
