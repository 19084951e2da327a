// SET/SETX GET MGET DEL EXISTS CHECK LENGTH KEYTIME: checks and replies in
// the reference's order and words; storage is the engine's.
import { overLimit, type Namespace } from '../engine/index.ts';
import { NIL, error, integer, arrayHeader } from '../resp/encoder.ts';
import type { Client } from './client.ts';
import type { ServerContext } from './context.ts';
import { MAX_KEY_LENGTH, adminOnly, argInt, engineFailure, notFrozen, notLocked, nsMaxsize, validateArgs } from './context.ts';

export function cmdSet(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  // a 4th argument (timestamp) is for replication: admin only
  if (args.length === 4) {
    if (!adminOnly(ctx, c)) return;
  } else if (!validateArgs(c, args, 3, true)) return;
  const key = args[1];
  const value = args[2];
  if (key.length > MAX_KEY_LENGTH) return c.out.push(error('Key too large'));
  if (!c.writable) return c.out.push(error('Namespace is in read-only mode'));
  const s = ns.settings();
  if (!notFrozen(c, s) || !notLocked(c, s)) return;
  const limit = nsMaxsize(ctx, ns, s);
  // the key's old value matters only to worm mode and a size limit: no lookup otherwise
  const existing = key.length > 0 && (s.worm || limit > 0n) ? ns.meta(key) : undefined;
  if (existing && s.worm) return c.out.push(error('Namespace is protected by worm mode'));
  // overwriting frees the old value, so it counts as room
  if (limit > 0n && overLimit(limit, ns.stats().dataSize, value.length, existing?.size ?? 0)) return c.out.push(error('No space left on this namespace'));
  if (s.mode === 'user' && key.length === 0) return c.out.push(error('Invalid argument, key needed'));
  let r: { key: Buffer; changed: boolean };
  try {
    // the engine copies what it keeps: key and value may be views of the socket's read buffer
    r = ns.set(key, value, args.length === 4 ? { timestamp: argInt(args[3]) } : undefined);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Cannot write data right now');
  }
  if (!r.changed) return c.out.push(NIL);
  c.wrote = true;
  c.out.pushBulk(r.key);
}

function getOne(ctx: ServerContext, c: Client, ns: Namespace, key: Buffer): void {
  let r: { payload: Buffer } | undefined;
  try {
    r = ns.get(key);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  if (r) c.out.pushBulk(r.payload);
  else c.out.push(NIL);
}

export function cmdGet(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (!validateArgs(c, args, 2)) return;
  if (args[1].length > MAX_KEY_LENGTH) return c.out.push(error('Invalid key'));
  if (!notFrozen(c, ns.settings())) return;
  getOne(ctx, c, ns, args[1]);
}

export function cmdMget(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (args.length < 2) return c.out.push(error('Invalid arguments'));
  for (let i = 1; i < args.length; i++) if (args[i].length > MAX_KEY_LENGTH) return c.out.push(error('Invalid key'));
  if (!notFrozen(c, ns.settings())) return;
  c.out.push(arrayHeader(args.length - 1));
  for (let i = 1; i < args.length; i++) getOne(ctx, c, ns, args[i]);
}

export function cmdDel(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (args.length === 3) {
    if (!adminOnly(ctx, c)) return;
  } else if (!validateArgs(c, args, 2)) return;
  const key = args[1];
  if (key.length > MAX_KEY_LENGTH) return c.out.push(error('Invalid key'));
  if (!c.writable) return c.out.push(error('Namespace is in read-only mode'));
  const s = ns.settings();
  if (!notFrozen(c, s) || !notLocked(c, s)) return;
  if (!ns.exists(key)) return c.out.push(error('Key not found'));
  if (s.worm) return c.out.push(error('Cannot delete a key when namespace is in worm mode'));
  try {
    if (!ns.del(key)) return c.out.push(error('Key not found'));
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Cannot delete key (data)');
  }
  c.wrote = true;
  c.out.push('+OK\r\n');
}

/** Shared shape of EXISTS/CHECK/LENGTH/KEYTIME: one key, frozen check, then a lookup. */
function keyQuery(c: Client, ns: Namespace, args: Buffer[]): Buffer | undefined {
  if (!validateArgs(c, args, 2)) return undefined;
  if (args[1].length > MAX_KEY_LENGTH) {
    c.out.push(error('Invalid key'));
    return undefined;
  }
  if (!notFrozen(c, ns.settings())) return undefined;
  return args[1];
}

export function cmdExists(_ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  const key = keyQuery(c, ns, args);
  if (key) c.out.push(integer(ns.exists(key) ? 1 : 0));
}

export function cmdCheck(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  const key = keyQuery(c, ns, args);
  if (!key) return;
  let ok: boolean | undefined;
  try {
    ok = ns.check(key);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  c.out.push(ok === undefined ? NIL : integer(ok ? 1 : 0));
}

export function cmdLength(_ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  const key = keyQuery(c, ns, args);
  if (!key) return;
  const m = ns.meta(key);
  c.out.push(m ? integer(m.size) : NIL);
}

export function cmdKeytime(_ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  const key = keyQuery(c, ns, args);
  if (!key) return;
  const m = ns.meta(key);
  c.out.push(m ? integer(m.timestamp) : NIL);
}
