// The HTTP server's connection limits, against raw sockets on loopback: the
// per-address and total caps, the send-stall timeout for clients that stop
// reading, and the idle limit. Clients bind 127.0.0.2 / 127.0.0.3 to be two
// hosts.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BootTimeline } from '../../boot/timeline.ts';
import type { HttpServer, HttpServerOptions } from '../../boot/http/index.ts';
import { startStoreServer } from '../helpers/http-store-server.ts';

let dir = '';
const BIG = 16 * 1024 * 1024;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-http-limits-'));
  await writeFile(path.join(dir, 'big.bin'), Buffer.alloc(BIG, 1));
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const server = (t: { teardown(fn: () => Promise<void>): void }, extra: Partial<HttpServerOptions>) => startStoreServer(t, dir, extra);

interface Client {
  socket: Socket;
  /** Everything received so far. */
  text(): string;
  closed: Promise<void>;
}

function client(port: number, from: string): Client {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let text = '';
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, text: () => text, closed };
}

/** Sends a keep-alive request for the chain script and waits for its whole answer. */
async function served(c: Client, deadlineMs = 15_000): Promise<boolean> {
  const before = c.text().length;
  c.socket.write('GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n');
  const end = Date.now() + deadlineMs;
  while (Date.now() < end && !c.socket.destroyed) {
    const got = c.text().slice(before);
    if (/^HTTP\/1.1 200 OK[\s\S]*#!ipxe\n[\s\S]*\n$/.test(got) && got.includes('chain ')) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** A connection the server refused at once: it is closed without an answer. */
async function refused(c: Client, deadlineMs = 15_000): Promise<boolean> {
  c.socket.write('GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n');
  const outcome = await Promise.race([c.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), deadlineMs))]);
  return outcome === 'closed' && c.text() === '';
}

test('the per-address cap refuses one more connection from that host while another host is served', async (t) => {
  const s = await server(t, { limits: { maxPerAddress: 3 }, timeouts: { keepAliveMs: 60_000 } });
  const held = [client(s.port, '127.0.0.2'), client(s.port, '127.0.0.2'), client(s.port, '127.0.0.2')];
  t.teardown(() => held.forEach((c) => c.socket.destroy()));
  // Each is counted once it has been answered.
  for (const c of held) t.true(await served(c), 'one of the first three from 127.0.0.2');
  const fourth = client(s.port, '127.0.0.2');
  t.true(await refused(fourth), `the fourth from 127.0.0.2 got: ${JSON.stringify(fourth.text().slice(0, 80))}`);
  const other = client(s.port, '127.0.0.3');
  t.teardown(() => other.socket.destroy());
  t.true(await served(other), '127.0.0.3 is served');
  // The held connections still work, and a freed slot can be taken again.
  t.true(await served(held[0]));
  held[2].socket.destroy();
  await held[2].closed;
  let again = false;
  for (const end = Date.now() + 15_000; !again && Date.now() < end; ) {
    const c = client(s.port, '127.0.0.2');
    again = await served(c, 2000);
    c.socket.destroy();
  }
  t.true(again, 'a slot freed on 127.0.0.2 is usable again');
});

test('the total cap refuses connections beyond it, whoever sends them', async (t) => {
  const s = await server(t, { limits: { maxConnections: 2, maxPerAddress: 0 }, timeouts: { keepAliveMs: 60_000 } });
  const held = [client(s.port, '127.0.0.2'), client(s.port, '127.0.0.3')];
  t.teardown(() => held.forEach((c) => c.socket.destroy()));
  for (const c of held) t.true(await served(c));
  const third = client(s.port, '127.0.0.4');
  t.true(await refused(third), `a third connection got: ${JSON.stringify(third.text().slice(0, 80))}`);
});

/** Requests the big file for `mac` and never reads; resolves with how long until the server gave up on it. */
async function stalledDownload(s: HttpServer & { timeline: BootTimeline }, mac: string, deadlineMs: number): Promise<number | undefined> {
  const c = client(s.port, '127.0.0.2');
  c.socket.pause();
  const started = Date.now();
  c.socket.write(`GET /big.bin?mac=${mac} HTTP/1.1\r\nHost: x\r\n\r\n`);
  try {
    // The download is recorded when the server stops it (a stalled one stops only when the connection is cut).
    for (const end = started + deadlineMs; Date.now() < end; ) {
      const ev = s.timeline.events(mac).at(-1);
      if (ev) return ev.reason && /closed the connection/.test(ev.reason) && (ev.detail!.bytes as number) < BIG ? Date.now() - started : -1;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  } finally {
    c.socket.destroy();
  }
}

test('a client that stops reading is disconnected after the send-stall timeout', async (t) => {
  const s = await server(t, { limits: { sendStallMs: 1500 }, timeouts: { idleMs: 120_000 } });
  const after = await stalledDownload(s, '52:54:00:00:05:01', 20_000);
  t.not(after, undefined, 'still connected after 20 s');
  t.true(after! >= 1400, `cut after ${after} ms, before the timeout`);
});

test('a client that reads slowly but steadily is not cut by the send-stall timeout', async (t) => {
  const s = await server(t, { limits: { sendStallMs: 1500 }, timeouts: { idleMs: 120_000 } });
  const c = client(s.port, '127.0.0.2');
  t.teardown(() => c.socket.destroy());
  c.socket.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  // At most 64 KiB per 250 ms, for three times the timeout.
  c.socket.pause();
  for (let i = 0; i < 18; i++) {
    c.socket.read(64 * 1024);
    await new Promise((r) => setTimeout(r, 250));
  }
  t.false(c.socket.destroyed, 'cut although it kept reading');
  t.true(c.text().length < BIG / 2, `read ${c.text().length} bytes`);
});

test('the idle limit holds for a client that stops reading (send-stall timeout off)', async (t) => {
  const idleMs = 6000;
  const s = await server(t, { limits: { sendStallMs: 0 }, timeouts: { idleMs } });
  const after = await stalledDownload(s, '52:54:00:00:05:02', 25_000);
  t.not(after, undefined, 'still connected after 25 s');
  t.log(`cut after ${after} ms`);
  // Checked once a second, so up to two seconds late; Node's socket timeout took twice the limit here.
  t.true(after! >= idleMs - 100 && after! < idleMs + 3500, `cut after ${after} ms with an idle limit of ${idleMs} ms`);
});
