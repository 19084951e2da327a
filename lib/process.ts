// Child processes, as the rig, the tests and the benchmarks start them: run
// a command for its output, wait for a line a server prints when ready, and
// kill by pid (never by name), ignoring a process that is already gone.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';

const execFileP = promisify(execFile);

/** Runs a command and returns its stdout; rejects when it fails. */
export async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
  /** The exit code; 128 when a signal ended it (the timeout's SIGKILL). */
  code: number;
}

/** Runs a command with `input` on stdin; resolves with its output and exit code whatever they are (SIGKILL after `timeout` ms). */
export function runCommand(cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}): Promise<CommandOutput> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = opts.timeout ? setTimeout(() => child.kill('SIGKILL'), opts.timeout) : undefined;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
    });
    // A command that exits before reading its input must not crash us with EPIPE.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

/** Sends `signal` to `pid`; false when no such process (already gone) or not ours to signal. */
export function killPid(pid: number, signal: NodeJS.Signals | 0 = 'SIGKILL'): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process with this pid exists (a zombie included). */
export function isAlive(pid: number): boolean {
  return killPid(pid, 0);
}

/**
 * The fields of a /proc/<pid>/stat line after the command name, which may
 * hold spaces and parentheses, so they are counted from the last ')':
 * [0] state, [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime, [16] nice.
 */
export function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** Whether `pid` still runs: it exists and is not a zombie (dead, waiting for its parent to reap it). */
export function isRunning(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  return statFields(stat)[0] !== 'Z';
}

/**
 * Waits until none of `pids` runs, polling, for at most `ms`; gives those
 * still running. A signal is delivered at once but a process takes time to
 * exit (its threads, its memory): a caller that killed one and reports it
 * gone waits for this.
 */
export async function waitUntilGone(pids: number[], ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  let left = pids.filter(isRunning);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    left = left.filter(isRunning);
  }
  return left;
}

/** waitUntilGone for exit handlers, which cannot await: sleeps between polls without an event loop. */
export function waitUntilGoneSync(pids: number[], ms: number): number[] {
  const until = Date.now() + ms;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let left = pids.filter(isRunning);
  while (left.length > 0 && Date.now() < until) {
    Atomics.wait(nap, 0, 0, 20);
    left = left.filter(isRunning);
  }
  return left;
}

/** Resolves when `pattern` appears on the child's stdout or stderr. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = seen.match(pattern);
      if (m) {
        done();
        resolve(m[0]);
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`process exited (${code}) before printing ${pattern}: ${seen.slice(-2000)}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${pattern}: ${seen.slice(-2000)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
  });
}
