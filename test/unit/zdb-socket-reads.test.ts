// Accepted sockets read into one shared buffer: the fast path is taken on
// this Node, bytes arrive in order, and a client's end still closes the socket.
import test from 'ava';
import net from 'node:net';
import { once } from 'node:events';
import { SharedReadBuffer } from '../../zdb/server/socket-reads.ts';

test('accepted sockets deliver their bytes through the shared buffer, and close when the client ends', async (t) => {
  const reads = new SharedReadBuffer();
  const received: string[] = [];
  let fast: boolean | undefined;
  let closed!: () => void;
  const serverClosed = new Promise<void>((r) => (closed = r));
  const server = net.createServer((s) => {
    fast = reads.attach(s, (chunk) => void received.push(chunk.toString('latin1')));
    s.on('close', closed);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  try {
    client.write('first');
    const deadline = Date.now() + 20000;
    while (received.join('') !== 'first' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    client.end('second');
    await Promise.race([serverClosed, new Promise((_, reject) => setTimeout(() => reject(new Error('the server socket never closed after the client ended')), 20000))]);
    t.true(fast, 'this Node takes the shared-buffer path');
    t.is(received.join(''), 'firstsecond');
  } finally {
    client.destroy();
    server.close();
  }
});
