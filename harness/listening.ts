// Readiness of a server started as a child process: a free loopback port
// to give it, and a wait until that port accepts connections.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** how long a server may take to listen: generous, other tests and QEMU guests may hold both cores */
export const START_DEADLINE_MS = 60000;

/**
 * The kernel's ephemeral range: listen(0) and every outgoing connection take their port from it,
 * so a port picked there and released can be taken by any client on the host before our server binds it.
 */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch {
    // not Linux, or /proc not mounted: assume the kernel's default
  }
  return [32768, 60999];
}

/** A random port that no outgoing connection can take: below the ephemeral range (or above it when that is wider). */
function randomStablePort(span = 1): number {
  const [low, high] = ephemeralRange();
  const below: [number, number] = [10_000, low - span];
  const above: [number, number] = [high + 1, 65_535 - span];
  const width = (r: [number, number]) => Math.max(0, r[1] - r[0]);
  const [from, to] = width(below) >= width(above) ? below : above;
  return from + Math.floor(Math.random() * (to - from + 1));
}

/**
 * A port free on 127.0.0.1 now, for a server started next. It is picked outside the ephemeral range:
 * a port from listen(0) was once taken by another test's client connection between the check and the server's bind.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = randomStablePort();
    if (await canListen(port)) return port;
  }
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
    const base = randomStablePort(2);
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
