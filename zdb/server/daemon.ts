// --background: the same command runs again as a detached child (stdout and
// stderr to --logfile, or nowhere); this process exits 0 once the child
// listens, or 1 if it dies first.
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export const DAEMON_ENV = 'ZEROBOOT_ZDB_DAEMON_CHILD';

export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] === '1';
}

/** In the child: tells the parent it listens, then lets it go. */
export function notifyDaemonParent(): void {
  if (!isDaemonChild() || !process.send) return;
  process.send('ready');
  process.disconnect();
}

export function daemonize(logfile: string | undefined, say: (line: string) => void): Promise<number> {
  const out = logfile ? openSync(logfile, 'w') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  if (typeof out === 'number') closeSync(out);
  return new Promise((resolve) => {
    const onExit = (code: number | null) => {
      say(`[-] system: background process exited before it was ready (code ${code})`);
      resolve(1);
    };
    child.once('exit', onExit);
    child.once('error', (e) => {
      say(`[-] system: cannot start background process: ${e.message}`);
      resolve(1);
    });
    child.once('message', () => {
      child.removeListener('exit', onExit);
      say(`[+] system: forking to background (pid: ${child.pid})`);
      if (child.connected) child.disconnect();
      child.unref();
      resolve(0);
    });
  });
}
