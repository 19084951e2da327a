// What command handlers see of the server, and the argument checks they
// share (with the reference's error texts).
import type { Engine, Namespace, NsSettings } from '../engine/index.ts';
import { ZdbEngineError, ZdbWriteFailure } from '../engine/index.ts';
import type { Client } from './client.ts';
import type { HookRunner } from './hooks.ts';
import type { ZdbLog } from './log.ts';
import type { ZdbOptions } from './options.ts';
import { error } from '../resp/encoder.ts';

export const MAX_KEY_LENGTH = 255;
export const NAMESPACE_MAX_LENGTH = 128;
export const DEFAULT_NAMESPACE = 'default';

export interface ServerStats {
  /** unix seconds */
  bootTime: number;
  clients: number;
  commandsValid: number;
  commandsFailed: number;
  adminFailed: number;
  networkRx: number;
  networkTx: number;
}

export interface ServerContext {
  readonly engine: Engine;
  readonly opts: ZdbOptions;
  readonly hooks: HookRunner;
  readonly stats: ServerStats;
  readonly log: ZdbLog;
  /** random per boot, shown by INFO */
  readonly instanceId: number;
  clients(): Iterable<Client>;
  /** WAIT: `c` gets `+<command>` when another client on its namespace runs it, or -Timeout */
  watch(c: Client, command: string, timeoutMs: number): void;
  /** after every known command: wakes the clients waiting for it */
  executed(c: Client, command: string): void;
  /** NSDEL: clients on `name` are told and disconnected at their next command */
  detachNamespace(name: string): void;
}

/** The password in force: --protect puts the admin password on `default` (in memory only, as the reference does). */
export function nsPassword(ctx: ServerContext, ns: Namespace, s: NsSettings = ns.settings()): string | undefined {
  if (ctx.opts.protect && ns.name === DEFAULT_NAMESPACE) return ctx.opts.admin;
  return s.password;
}

/** The size limit in force: --maxsize applies to `default` (in memory only). */
export function nsMaxsize(ctx: ServerContext, ns: Namespace, s: NsSettings = ns.settings()): bigint {
  if (ctx.opts.maxsize && ns.name === DEFAULT_NAMESPACE) return BigInt(ctx.opts.maxsize);
  return s.maxsize;
}

/** `argc` must be exact; with `allowEmpty` false no argument may be empty. */
export function validateArgs(c: Client, args: Buffer[], expected: number, allowEmpty = false): boolean {
  if (args.length !== expected) {
    c.out.push(error('Unexpected arguments'));
    return false;
  }
  if (!allowEmpty) {
    for (const a of args) {
      if (a.length === 0) {
        c.out.push(error('Invalid argument'));
        return false;
      }
    }
  }
  return true;
}

export function adminOnly(ctx: ServerContext, c: Client): boolean {
  if (c.admin) return true;
  ctx.stats.adminFailed++;
  c.out.push(error('Permission denied'));
  return false;
}

/** Frozen namespaces refuse reads and writes alike. */
export function notFrozen(c: Client, s: NsSettings): boolean {
  if (!s.frozen) return true;
  c.out.push(error('Namespace is temporarily frozen (read-write disabled)'));
  return false;
}

export function notLocked(c: Client, s: NsSettings): boolean {
  if (!s.locked) return true;
  c.out.push(error('Namespace is temporarily locked (read-only)'));
  return false;
}

/**
 * Replies to an engine failure: refusals carry the reference's text; anything
 * else is an I/O problem (the engine's file sets count it for NSINFO and
 * INFO), logged and answered with `fallback`.
 */
export function engineFailure(ctx: ServerContext, c: Client, ns: Namespace | undefined, e: unknown, fallback: string): void {
  if (e instanceof ZdbEngineError && !(e instanceof ZdbWriteFailure)) {
    c.out.push(error(e.message));
    return;
  }
  ctx.log.warn(`[-] ${ns ? `namespace ${ns.name}: ` : ''}${(e as Error)?.message ?? String(e)}`);
  // a failed write says so, and that the namespace waits for RELOAD
  c.out.push(error(e instanceof ZdbWriteFailure ? e.message : fallback));
}

/** The C string the reference makes of an argument (`%.*s`). */
export function argString(a: Buffer): string {
  const nul = a.indexOf(0);
  return (nul >= 0 ? a.subarray(0, nul) : a).toString('utf8');
}

const LLONG_MAX = (1n << 63n) - 1n;
const LLONG_MIN = -(1n << 63n);

/** atoll() of an argument, exactly: leading digits, 0 without any, saturated to the long long range. */
export function argLongLong(a: Buffer): bigint {
  const m = /^\s*([+-]?\d+)/.exec(a.toString('latin1'));
  if (!m) return 0n;
  const n = BigInt(m[1]);
  return n > LLONG_MAX ? LLONG_MAX : n < LLONG_MIN ? LLONG_MIN : n;
}

/** atoll() of an argument, as a number. */
export function argInt(a: Buffer): number {
  return Number(argLongLong(a));
}
