// The reference 0-db binary (given in ZDB_REFERENCE or --reference) as a
// process on loopback: started on a free port, stopped by its pid, and
// killed when it ignores the polite signal, so no test or benchmark leaves
// one behind, whatever fails in between.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, waitListening } from './listening.ts';

export interface ReferenceProcess {
  port: number;
  dataDir: string;
  indexDir: string;
  child: ChildProcess;
  output(): string;
  /** how it ended, or undefined while it runs */
  exitStatus(): string | undefined;
  /** Sends `signal`, then SIGKILL when it has not exited within `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Stops `child` by pid: `signal`, then SIGKILL after `graceMs`; resolves once it exited. */
export async function stopChild(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)));
  if (await Promise.race([exited.then(() => false), late])) {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}

/** Starts the reference on 127.0.0.1 (never its default, every address) with `flags`. */
export async function startReference(binary: string, dir: string, flags: string[]): Promise<ReferenceProcess> {
  const port = await freePort();
  const dataDir = path.join(dir, 'data');
  const indexDir = path.join(dir, 'index');
  const child = spawn(binary, ['--listen', '127.0.0.1', '--port', String(port), '--data', dataDir, '--index', indexDir, ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const stop = (signal: NodeJS.Signals = 'SIGINT', graceMs = 10000) => stopChild(child, exited, signal, graceMs);
  try {
    await waitListening(port, child, () => out);
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }
  return {
    port,
    dataDir,
    indexDir,
    child,
    output: () => out,
    exitStatus: () => (child.exitCode !== null ? `exit ${child.exitCode}` : child.signalCode !== null ? `signal ${child.signalCode}` : undefined),
    stop,
  };
}
