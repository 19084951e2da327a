// Readiness of a server started as a child process: a free loopback port
// to give it, and a wait until that port accepts connections.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** how long a server may take to listen: generous, other tests and QEMU guests may hold both cores */
export const START_DEADLINE_MS = 60000;

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function canListen(port: number): Promise<boolean> {
  const srv = net.createServer();
  const ok = await new Promise<boolean>((r) => {
    srv.once('error', () => r(false));
    srv.listen(port, '127.0.0.1', () => r(true));
  });
  if (ok) await new Promise<void>((r) => srv.close(() => r()));
  return ok;
}

/** A port p such that p and p + 1 are both free on 127.0.0.1 now (for servers numbered from a base port). */
export async function freePortPair(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await canListen(base)) && (await canListen(base + 1))) return base;
  }
}

/** Resolves once `port` on 127.0.0.1 accepts a connection; throws when `child` exits first or after START_DEADLINE_MS. */
export async function waitListening(port: number, child: ChildProcess, output: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}):\n${output()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`not listening on ${port}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
