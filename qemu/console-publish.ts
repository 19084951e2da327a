// Hands a VM's serial console to a zeroboot server in another process: the
// server listens on <stateDir>/consoles.sock (boot/http/console-hub.ts); the
// rig connects once per VM, says which VM it is (one JSON line), the server
// answers "ok" or "error: <why>", and from then on the rig streams the
// console's raw output and types what the server sends back on the console
// (the server only sends input when its configuration lets viewers type).
// A server without the socket, or one that goes away, only means no console
// in its dashboard: the VM runs on.
import { connect } from 'node:net';
import type { SerialConsole } from './console.ts';

/** Output held while the server has not answered yet. */
const MAX_EARLY_BYTES = 64 * 1024;

export interface PublishedConsole {
  /** Resolves with "ok" once the server took the console, or with why not. */
  result: Promise<string>;
  close(): void;
}

export function publishConsole(console: SerialConsole, socketPath: string, vm: { name: string; macs: string[] }): PublishedConsole {
  const socket = connect(socketPath);
  // Listening from the start, so what QEMU prints while the server answers is not lost.
  let early: string[] | undefined = [];
  let earlyBytes = 0;
  const stopRaw = console.onRaw((d) => {
    if (!early) return socket.write(d);
    if (earlyBytes + d.length <= MAX_EARLY_BYTES) early.push(d);
    earlyBytes += d.length;
  });
  const close = () => {
    stopRaw();
    socket.destroy();
  };
  let settle: (r: string) => void = () => undefined;
  const result = new Promise<string>((resolve) => (settle = resolve));
  socket.once('connect', () => socket.write(JSON.stringify({ name: vm.name, macs: vm.macs }) + '\n'));
  socket.on('error', (e) => {
    settle(`no console socket: ${e.message}`);
    close();
  });
  socket.on('close', () => {
    settle('the server closed the console socket');
    stopRaw();
  });
  let answer = '';
  socket.on('data', (d: Buffer) => {
    if (early) {
      answer += d.toString('utf8');
      const nl = answer.indexOf('\n');
      if (nl < 0) return;
      const line = answer.slice(0, nl);
      if (line !== 'ok') {
        settle(line);
        return close();
      }
      for (const e of early) socket.write(e);
      early = undefined;
      settle('ok');
      const rest = answer.slice(nl + 1);
      if (rest && console.running) console.write(rest);
      return;
    }
    if (console.running) console.write(d.toString('utf8'));
  });
  void console.exited.then(() => socket.end());
  return { result, close };
}
