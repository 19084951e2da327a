// A TCP port inside the rig's namespace (the server's management listener
// on the namespace's loopback) made reachable from the host's loopback, so
// a browser on the host opens the demo's dashboard: a small process inside
// the namespace listens on a unix socket in the rig's work folder (a path
// crosses network namespaces) and connects each stream to the target; the
// host side listens on 127.0.0.1 and pipes each connection to that socket.
// Bounded in connections on both sides; killed by pid with the rig.
//   node port-bridge.ts <unix socket> <target host> <target port>   (the namespace side)
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Netns } from './netns.ts';
import { killPid, waitForOutput } from '../lib/process.ts';

const MAX_CONNECTIONS = 32;

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

export interface PortBridge {
  /** The host's loopback port. */
  port: number;
  close(): Promise<void>;
}

/** Forwards 127.0.0.1:<listenPort> on the host (0: any free port) to `target` inside `ns`, through `socketPath`. */
export async function startPortBridge(ns: Netns, target: { host: string; port: number }, socketPath: string, listenPort = 0): Promise<PortBridge> {
  const child: ChildProcess = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), socketPath, target.host, String(target.port)]);
  try {
    await waitForOutput(child, /^ready$/m, 30_000);
  } catch (e) {
    if (child.pid) killPid(child.pid);
    throw e;
  }
  const server: Server = createServer((c) => pipeBoth(c, connect(socketPath)));
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: async () => {
      if (child.pid && child.exitCode === null) killPid(child.pid);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [socketPath, host, port] = process.argv.slice(2);
  const server = createServer((c) => pipeBoth(c, connect(Number(port), host)));
  server.maxConnections = MAX_CONNECTIONS;
  server.listen(socketPath, () => process.stdout.write('ready\n'));
}
