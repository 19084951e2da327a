// One 0-db per pool, kept running: each is `zeroboot zdb` with the flags zos
// starts 0-db with, its files in the pool's `zdb` subvolume, reachable on TCP
// for workloads and on a unix socket for the agent. A process that exits is
// started again after a backoff that doubles with each quick failure and
// resets once it has run a while; one that stops answering PING on its
// socket is killed (and so restarted). Health and restarts go into every report.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../lib/durable-file.ts';
import type { RespClient } from '../zdb/resp/client.ts';
import type { ZdbHealth } from './report.ts';

export interface ZdbSpec {
  /** The disk the pool is on (for the report). */
  disk: string;
  /** The pool's `zdb` subvolume: data/ and index/ go under it. */
  dir: string;
  /** TCP port for workloads (zos: 9900 and up). */
  port: number;
  listen?: string;
  socket: string;
  adminSecret: string;
}

/** zos's 0-db flags; --dualnet keeps TCP open beside the socket (our zdb, like 0-db, drops TCP for a socket otherwise). */
export function zdbArgs(spec: ZdbSpec): string[] {
  return ['--protect', '--admin', spec.adminSecret, '--data', join(spec.dir, 'data'), '--index', join(spec.dir, 'index'), '--listen', spec.listen ?? '::', '--port', String(spec.port), '--socket', spec.socket, '--dualnet'];
}

export const ADMIN_FILE = '.zdb-admin';

/** The pool's zdb admin secret, made once and kept beside the data so a reboot keeps it. */
export async function adminSecretOf(dir: string): Promise<string> {
  try {
    const s = (await readFile(join(dir, ADMIN_FILE), 'utf8')).trim();
    if (/^[0-9a-f]{32}$/.test(s)) return s;
  } catch {
    // made below
  }
  const secret = randomBytes(16).toString('hex');
  await mkdir(dir, { recursive: true });
  await writeFileDurably(join(dir, ADMIN_FILE), `${secret}\n`, 0o600);
  return secret;
}

/** Which pools run a 0-db: every HDD pool; with `missing-ssd` and no HDD pool, the SSD pools. */
export function zdbPools<T extends { type: 'ssd' | 'hdd' }>(pools: T[], missingSsd: boolean): T[] {
  const hdd = pools.filter((p) => p.type === 'hdd');
  return hdd.length > 0 || !missingSsd ? hdd : pools;
}

export interface SupervisorOptions {
  /** argv that runs `zeroboot` (e.g. [process.execPath, 'cli/zeroboot.ts']); `zdb` and the flags are appended. */
  command: string[];
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A run this long resets the backoff. */
  stableMs?: number;
  healthIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Failed health checks in a row before the process is killed. */
  unhealthyLimit?: number;
  /** Failed checks this soon after a start do not count: the process may still be opening its files. */
  startGraceMs?: number;
  /**
   * A process that has not answered once yet is still starting for this
   * long: opening a large index takes minutes on a slow disk (four zdbs
   * starting at once on a slow node took over a minute), and killing it
   * then would only start the wait again.
   */
  firstAnswerMs?: number;
  log?: (msg: string) => void;
}

export class ZdbSupervisor {
  readonly spec: ZdbSpec;
  private readonly opts: Required<Omit<SupervisorOptions, 'log'>> & Pick<SupervisorOptions, 'log'>;
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private quickFailures = 0;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private failedChecks = 0;
  /** Whether the current process has answered a PING. */
  private answered = false;
  private state: ZdbHealth;
  private exited: Promise<void> = Promise.resolve();

  constructor(spec: ZdbSpec, opts: SupervisorOptions) {
    this.spec = spec;
    this.opts = { baseDelayMs: 500, maxDelayMs: 30_000, stableMs: 30_000, healthIntervalMs: 10_000, pingTimeoutMs: 3_000, unhealthyLimit: 3, startGraceMs: 30_000, firstAnswerMs: 300_000, ...opts };
    this.state = { disk: spec.disk, port: spec.port, socket: spec.socket, healthy: false, restarts: 0 };
  }

  /** Whether start() was called (the process may be between restarts). */
  get started(): boolean {
    return this.healthTimer !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  health(): ZdbHealth {
    return { ...this.state };
  }

  start(): void {
    this.stopping = false;
    this.spawn();
    this.healthTimer = setInterval(() => void this.check(), this.opts.healthIntervalMs);
  }

  private spawn(): void {
    const [cmd, ...rest] = this.opts.command;
    const child = spawn(cmd, [...rest, 'zdb', ...zdbArgs(this.spec)], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.startedAt = Date.now();
    this.answered = false;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.state.healthy = false;
        this.state.lastExit = `exited ${signal ?? `with code ${code}`}${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`;
        if (this.child === child) this.child = undefined;
        resolve();
        if (!this.stopping) this.scheduleRestart();
      });
    });
    child.once('error', (e) => {
      this.state.lastExit = `cannot start: ${e.message}`;
    });
  }

  private scheduleRestart(): void {
    const ranMs = Date.now() - this.startedAt;
    this.quickFailures = ranMs >= this.opts.stableMs ? 0 : this.quickFailures + 1;
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** Math.max(0, this.quickFailures - 1));
    this.opts.log?.(`zdb on ${this.spec.disk} ${this.state.lastExit}; restarting in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.state.restarts++;
      this.spawn();
    }, delay);
  }

  /** PINGs the socket; records the result; kills a process that fails `unhealthyLimit` checks in a row. */
  async check(): Promise<boolean> {
    let ok = false;
    let client: RespClient | undefined;
    try {
      // The RESP client is loaded at the first check, after the agent's first report, not before it.
      const { RespClient } = await import('../zdb/resp/client.ts');
      client = await RespClient.connect({ path: this.spec.socket }, { connectTimeoutMs: this.opts.pingTimeoutMs, commandTimeoutMs: this.opts.pingTimeoutMs });
      await client.ping();
      ok = true;
      delete this.state.lastError;
    } catch (e) {
      if (this.child) this.state.lastError = `health: ${(e as Error).message}`;
    } finally {
      client?.close();
    }
    this.state.healthy = ok && this.child !== undefined;
    if (ok) this.answered = true;
    const starting = Date.now() - this.startedAt < (this.answered ? this.opts.startGraceMs : this.opts.firstAnswerMs);
    this.failedChecks = ok || starting ? 0 : this.failedChecks + 1;
    if (!ok && this.child && this.failedChecks >= this.opts.unhealthyLimit) {
      this.opts.log?.(`zdb on ${this.spec.disk} failed ${this.failedChecks} health checks; killing pid ${this.child.pid}`);
      this.failedChecks = 0;
      this.child.kill('SIGKILL');
    }
    return this.state.healthy;
  }

  /** Stops supervising and ends the process (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.healthTimer);
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
