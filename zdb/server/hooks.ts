// The --hook program: run as `<hook> <event> <zdb id> [args...]`, no shell.
// Blocking events (ready, close, namespaces-init, missing-data) wait for the
// hook; the others run in the background. Recent runs are kept for the
// HOOKS command (60 s after they finish, as the reference does).
import { spawn, spawnSync } from 'node:child_process';
import type { ZdbLog } from './log.ts';

export const BLOCKING_HOOKS = new Set(['ready', 'close', 'namespaces-init', 'missing-data']);
const KEEP_FINISHED_MS = 60_000;

export interface HookRun {
  event: string;
  args: string[];
  pid: number;
  /** unix seconds */
  created: number;
  /** unix seconds; 0 while running */
  finished: number;
  status: number;
}

export class HookError extends Error {
  override name = 'HookError';
}

export class HookRunner {
  private readonly program: string | undefined;
  private readonly id: string;
  private readonly log: ZdbLog;
  private runs: HookRun[] = [];

  constructor(program: string | undefined, id: string, log: ZdbLog) {
    this.program = program;
    this.id = id;
    this.log = log;
  }

  get enabled(): boolean {
    return this.program !== undefined;
  }

  /** Runs the hook for `event`; returns the exit status of blocking hooks (0 for background ones). */
  run(event: string, ...args: string[]): number {
    if (!this.program) return 0;
    const argv = [event, this.id, ...args];
    const now = Math.floor(Date.now() / 1000);
    const run: HookRun = { event, args, pid: 0, created: now, finished: 0, status: 0 };
    this.prune();
    this.runs.push(run);
    if (BLOCKING_HOOKS.has(event)) {
      this.log.verbose(`[+] hook: executing (blocking): ${event}`);
      const r = spawnSync(this.program, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
      run.pid = r.pid ?? 0;
      run.finished = Math.floor(Date.now() / 1000);
      if (r.error) {
        this.log.warn(`[-] hook: ${this.program}: ${r.error.message}`);
        run.status = 127;
      } else run.status = r.status ?? 128 + 1;
      return run.status;
    }
    this.log.verbose(`[+] hook: executing (background): ${event}`);
    try {
      const child = spawn(this.program, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
      run.pid = child.pid ?? 0;
      child.on('error', (e) => {
        this.log.warn(`[-] hook: ${this.program}: ${e.message}`);
        run.status = 127;
        run.finished = Math.floor(Date.now() / 1000);
      });
      child.on('exit', (code, signal) => {
        run.status = code ?? (signal ? 128 : 1);
        run.finished = Math.floor(Date.now() / 1000);
      });
      child.unref();
    } catch (e) {
      this.log.warn(`[-] hook: ${this.program}: ${(e as Error).message}`);
      run.status = 127;
      run.finished = now;
    }
    return 0;
  }

  /** Running and recently finished hooks, oldest first. */
  list(): HookRun[] {
    this.prune();
    return this.runs.slice();
  }

  private prune(): void {
    const limit = Math.floor((Date.now() - KEEP_FINISHED_MS) / 1000);
    this.runs = this.runs.filter((r) => r.finished === 0 || r.finished >= limit);
  }
}
