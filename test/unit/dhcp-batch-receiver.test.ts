// The DHCP batch receiver over real loopback sockets, on both paths: the
// dhcpio addon's recvmmsg batches and plain dgram 'message' events. Every
// datagram arrives once, whole (up to a 60,000-byte one), in order, with
// its sender's address and port (also when senders take turns); a handler keeping a datagram keeps its
// own bytes; after stop() nothing more is delivered.
import test from 'ava';
import dgram from 'node:dgram';
import type { RemoteInfo } from 'node:dgram';
import { BatchReceiver } from '../../boot/dhcp/batch-receiver.ts';
import { loadDhcpIoAddon } from '../../boot/dhcp/io-addon.ts';
import type { DhcpIoAddon } from '../../boot/dhcp/io-addon.ts';

const loaded = loadDhcpIoAddon();
const addon = 'addon' in loaded ? loaded.addon : undefined;

async function bound(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

for (const [name, use] of [['batched (recvmmsg)', addon], ['dgram', undefined]] as [string, DhcpIoAddon | undefined][]) {
  test(`${name}: datagrams arrive once each, whole and in order, with their sender; none after stop()`, async (t) => {
    if (name.startsWith('batched') && !use) return t.fail(`the dhcpio addon is not built: ${'missing' in loaded ? loaded.missing : ''}`);
    const server = await bound();
    server.setRecvBufferSize(8 * 1024 * 1024);
    const client = await bound();
    t.teardown(() => {
      server.close();
      client.close();
    });
    const got: { buf: Buffer; from: RemoteInfo }[] = [];
    const receiver = new BatchReceiver(server, use, (buf, from) => got.push({ buf, from }));
    t.is(receiver.batched, use !== undefined);
    const port = (server.address() as { port: number }).port;
    const clientPort = (client.address() as { port: number }).port;
    const sent: Buffer[] = [];
    // More than one recvmmsg batch in one burst, and one datagram near the UDP maximum.
    for (let i = 0; i < 150; i++) {
      const b = Buffer.alloc(i === 77 ? 60_000 : 300 + i, i & 255);
      b.writeUInt32BE(i, 0);
      sent.push(b);
      client.send(b, port, '127.0.0.1');
    }
    await until(() => got.length >= sent.length);
    t.is(got.length, sent.length);
    t.deepEqual(got.map((g) => g.buf.readUInt32BE(0)), sent.map((_, i) => i));
    for (const [i, g] of got.entries()) {
      t.true(g.buf.equals(sent[i]!), `datagram ${i} intact`);
      t.like(g.from, { address: '127.0.0.1', port: clientPort, family: 'IPv4', size: sent[i]!.length });
    }
    // Senders taking turns: each datagram names its own sender (the receiver reuses the address string while it repeats).
    const other = dgram.createSocket('udp4');
    await new Promise<void>((r) => other.bind(0, '127.0.0.2', r));
    t.teardown(() => other.close());
    const otherPort = (other.address() as { port: number }).port;
    const mixed = [client, other, other, client, other, client, client, other];
    for (const [i, s] of mixed.entries()) {
      await new Promise<void>((r, j) => s.send(Buffer.from(`mixed ${i}`), port, '127.0.0.1', (e) => (e ? j(e) : r())));
    }
    await until(() => got.length >= sent.length + mixed.length);
    const tail = got.slice(sent.length).map((g) => ({ text: g.buf.toString(), address: g.from.address, port: g.from.port }));
    const want = mixed.map((s, i) => ({ text: `mixed ${i}`, address: s === client ? '127.0.0.1' : '127.0.0.2', port: s === client ? clientPort : otherPort }));
    t.deepEqual(tail.sort((a, b) => a.text.localeCompare(b.text)), want);
    receiver.stop();
    client.send(Buffer.from('late'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    if (use) t.is(got.length, sent.length + mixed.length, 'nothing after stop()');
  });
}
