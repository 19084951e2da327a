// Ports the test helpers hand to servers started next: never from the kernel's
// ephemeral range, where any client connection on the host may take them first.
import test from 'ava';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { freePort, freePortPair } from '../../harness/listening.ts';

const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);

test('freePort: outside the ephemeral range, and bindable', async (t) => {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    t.true(port < low || port > high, `${port} is in ${low}-${high}`);
    t.true(port >= 1024 && port <= 65535);
  }
  const port = await freePort();
  const srv = net.createServer();
  await new Promise<void>((r, j) => srv.once('error', j).listen(port, '127.0.0.1', r));
  await new Promise<void>((r) => srv.close(() => r()));
});

test('freePortPair: both ports outside the ephemeral range', async (t) => {
  for (let i = 0; i < 20; i++) {
    const base = await freePortPair();
    for (const port of [base, base + 1]) t.true(port < low || port > high, `${port} is in ${low}-${high}`);
  }
});
