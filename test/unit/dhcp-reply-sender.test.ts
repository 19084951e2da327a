// The DHCP reply sender over real loopback sockets, on both paths: batched
// through the dhcpio addon (sendmmsg) and plain dgram. Replies must arrive
// whole, in order, at their own destinations; a reply the kernel refuses is
// reported and does not stop the rest; close() sends what is queued.
import test from 'ava';
import dgram from 'node:dgram';
import type { Socket } from 'node:dgram';
import { ReplySender } from '../../boot/dhcp/reply-sender.ts';
import { loadDhcpIoAddon } from '../../boot/dhcp/io-addon.ts';
import type { DhcpIoAddon } from '../../boot/dhcp/io-addon.ts';

const loaded = loadDhcpIoAddon();
const addon = 'addon' in loaded ? loaded.addon : undefined;

async function udp(): Promise<{ socket: Socket; port: number; got: Buffer[]; waitFor(n: number): Promise<Buffer[]> }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  // 200 replies in one turn outrun the default receive buffer.
  socket.setRecvBufferSize(4 * 1024 * 1024);
  const got: Buffer[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (b) => {
    got.push(b);
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (n: number) => {
    const deadline = Date.now() + 20_000;
    while (got.length < n && Date.now() < deadline) await new Promise<void>((r) => (waiters.push(r), setTimeout(r, 200)));
    return got;
  };
  return { socket, port: (socket.address() as { port: number }).port, got, waitFor };
}

function packet(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i & 255);
  b.writeUInt32BE(i, 0);
  return b;
}

for (const [name, use] of [['batched (sendmmsg)', addon], ['dgram', undefined]] as [string, DhcpIoAddon | undefined][]) {
  test(`${name}: 200 replies of mixed sizes arrive whole and in order, each at its own destination`, async (t) => {
    if (name.startsWith('batched') && !use) return t.fail(`the dhcpio addon is not built: ${'missing' in loaded ? loaded.missing : ''}`);
    const a = await udp();
    const b = await udp();
    const from = dgram.createSocket('udp4');
    await new Promise<void>((r) => from.bind(0, '127.0.0.1', r));
    const errors: Error[] = [];
    const sender = new ReplySender(from, use, (e) => errors.push(e));
    t.is(sender.batched, use !== undefined);
    t.teardown(() => {
      sender.close();
      a.socket.close();
      b.socket.close();
    });
    const sent: { to: 'a' | 'b'; bytes: Buffer }[] = [];
    // More than a batch in one turn, and sizes up to an MTU: the batch flushes when full and at the end of the turn.
    for (let i = 0; i < 200; i++) {
      const bytes = packet(i, 300 + ((i * 37) % 1200));
      const to = i % 3 === 0 ? 'b' : 'a';
      sent.push({ to, bytes });
      sender.send(bytes, to === 'a' ? a.port : b.port, '127.0.0.1');
    }
    const wantA = sent.filter((s) => s.to === 'a').map((s) => s.bytes);
    const wantB = sent.filter((s) => s.to === 'b').map((s) => s.bytes);
    t.deepEqual(await a.waitFor(wantA.length), wantA);
    t.deepEqual(await b.waitFor(wantB.length), wantB);
    t.deepEqual(errors, []);
  });

  test(`${name}: a reply the kernel refuses is reported and the next ones still go; close() sends what is queued`, async (t) => {
    if (name.startsWith('batched') && !use) return t.fail('the dhcpio addon is not built');
    const a = await udp();
    const from = dgram.createSocket('udp4');
    await new Promise<void>((r) => from.bind(0, '127.0.0.1', r));
    t.teardown(() => a.socket.close());
    const errors: Error[] = [];
    const sender = new ReplySender(from, use, (e) => errors.push(e));
    sender.send(packet(1, 300), a.port, '127.0.0.1');
    // Broadcast without SO_BROADCAST: the kernel says EACCES.
    sender.send(packet(2, 300), a.port, '255.255.255.255');
    sender.send(packet(3, 300), a.port, '127.0.0.1');
    sender.close();
    sender.send(packet(4, 300), a.port, '127.0.0.1');
    const got = await a.waitFor(2);
    t.deepEqual(got.map((b) => b.readUInt32BE(0)), [1, 3]);
    const deadline = Date.now() + 5000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.is(errors.length, 1);
    t.regex(errors[0]!.message, /EACCES/);
  });
}
