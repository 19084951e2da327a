// zdb servers under test as real processes (`zeroboot zdb ...` on
// loopback), started and killed by pid, plus a raw RESP socket for the
// inputs a well-behaved client library would never send.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, START_DEADLINE_MS } from '../../harness/listening.ts';

export { freePort, waitListening, START_DEADLINE_MS } from '../../harness/listening.ts';

export const CLI = fileURLToPath(new URL('../../cli/zeroboot.ts', import.meta.url));

export interface ZdbProcess {
  proc: ChildProcess;
  port: number;
  dir: string;
  dataDir: string;
  indexDir: string;
  output(): string;
  /** resolves with the exit code (or 128 + signal number) */
  exited: Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<number>;
}

export async function tempDir(prefix = 'zdb-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11 };

/**
 * Runs `zeroboot zdb` with the given flags; without `port`/`noTcp` it listens on 127.0.0.1 and a free port.
 * `wrap` is a command the server runs under (e.g. strace and its flags).
 */
export function runZdbProcess(args: string[], env: NodeJS.ProcessEnv = process.env, wrap: string[] = []): { proc: ChildProcess; output: () => string; exited: Promise<number> } {
  const command = [...wrap, process.execPath, '--disable-warning=ExperimentalWarning', CLI, 'zdb', ...args];
  const proc = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': 'exit' can come before the last output is read (a loaded CI host lost --background's last line).
  const exited = new Promise<number>((resolve) => proc.on('close', (code, sig) => resolve(code ?? 128 + (SIGNALS[sig ?? ''] ?? 0))));
  return { proc, output: () => out, exited };
}

type StartOptions = { dir?: string; port?: number; tcp?: boolean; listeners?: number; wrap?: string[] };

export async function startZdb(extra: string[] = [], opts: StartOptions = {}): Promise<ZdbProcess> {
  // a port this helper picked may still be taken by another test's server between the check and the bind: pick again
  for (let attempt = 1; ; attempt++) {
    try {
      return await startZdbOnce(extra, opts);
    } catch (e) {
      if (opts.port !== undefined || opts.tcp === false || attempt === 3 || !(e instanceof PortTaken)) throw e;
    }
  }
}

class PortTaken extends Error {}

async function startZdbOnce(extra: string[], opts: StartOptions): Promise<ZdbProcess> {
  const dir = opts.dir ?? (await tempDir());
  const port = opts.port ?? (await freePort());
  const dataDir = path.join(dir, 'data');
  const indexDir = path.join(dir, 'index');
  const net = opts.tcp === false ? [] : ['--listen', '127.0.0.1', '--port', String(port)];
  const r = runZdbProcess([...net, '--data', dataDir, '--index', indexDir, ...extra], process.env, opts.wrap);
  const started = Date.now();
  const listeners = opts.listeners ?? 1;
  while ((r.output().match(/listening on/g) ?? []).length < listeners) {
    const done = await Promise.race([r.exited.then(() => true), new Promise<false>((res) => setTimeout(() => res(false), 25))]);
    if (done) {
      const message = `zdb exited before listening:\n${r.output()}`;
      throw r.output().includes('EADDRINUSE') ? new PortTaken(message) : new Error(message);
    }
    if (Date.now() - started > START_DEADLINE_MS) {
      r.proc.kill('SIGKILL');
      throw new Error(`zdb did not listen within ${START_DEADLINE_MS / 1000} s:\n${r.output()}`);
    }
  }
  return {
    proc: r.proc,
    port,
    dir,
    dataDir,
    indexDir,
    output: r.output,
    exited: r.exited,
    kill: async (signal = 'SIGTERM') => {
      if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill(signal);
      return r.exited;
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A raw connection: write bytes, read what comes back until the server closes or a pattern appears. */
export class RawClient {
  readonly socket: net.Socket;
  private data = Buffer.alloc(0);
  closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => (this.data = Buffer.concat([this.data, d])));
    socket.on('error', () => {});
    this.closed = new Promise((r) => socket.on('close', () => r()));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  static connectPath(p: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path: p }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(b: string | Buffer): void {
    this.socket.write(b);
  }

  received(): Buffer {
    return this.data;
  }

  /** Waits until `n` bytes arrived or the text contains `pattern`. */
  async waitFor(pattern: string | number, timeoutMs = 30000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.data.toString('latin1');
      if (typeof pattern === 'number' ? this.data.length >= pattern : text.includes(pattern)) return text;
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${JSON.stringify(pattern)}; got ${JSON.stringify(text.slice(0, 200))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
