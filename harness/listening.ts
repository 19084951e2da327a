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
