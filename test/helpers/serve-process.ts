// `zeroboot serve` as a child process for tests: started with a config file,
// ready once its JSON line names the HTTP URL, stopped by its pid.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killPid } from '../../lib/process.ts';

const BIN = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'), 'bin/zeroboot');

export interface ServeProcess {
  url: string;
  proc: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output: () => string;
}

/** `zeroboot serve --config <config> --json`; resolves with its HTTP URL once it listens (60 s deadline). */
export async function startServe(config: string, env: NodeJS.ProcessEnv = process.env): Promise<ServeProcess> {
  const proc = spawn(BIN, ['serve', '--config', config, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /"listening":\{"http":"([^"]+)"/.exec(out);
    if (m) return { url: m[1], proc, output: () => out };
    if (proc.exitCode !== null || Date.now() > deadline) {
      if (proc.pid && proc.exitCode === null) killPid(proc.pid);
      throw new Error(`serve did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM by pid, SIGKILL if it is still there after a generous wait. */
export async function stopServe(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || !proc.pid) return;
  const closed = new Promise((r) => proc.once('close', r));
  killPid(proc.pid, 'SIGTERM');
  const timer = setTimeout(() => proc.pid && killPid(proc.pid), 20_000);
  await closed;
  clearTimeout(timer);
}
