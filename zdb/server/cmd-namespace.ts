// NSNEW NSDEL NSLIST NSSET NSINFO SELECT DBSIZE RELOAD FLUSH.
import { statfsSync } from 'node:fs';
import type { Namespace, NsSettings } from '../engine/index.ts';
import { OK, error, integer, arrayHeader } from '../resp/encoder.ts';
import type { Client } from './client.ts';
import type { ServerContext } from './context.ts';
import { DEFAULT_NAMESPACE, NAMESPACE_MAX_LENGTH, adminOnly, argLongLong, argString, engineFailure, nsMaxsize, nsPassword, validateArgs } from './context.ts';
import { passwordMatches, secureHash, SHA1_HEX_LENGTH } from './auth.ts';

const COMMAND_MAXLEN = 256;

function nsArg(c: Client, a: Buffer): string | undefined {
  if (a.length > NAMESPACE_MAX_LENGTH) {
    c.out.push(error('Namespace too long'));
    return undefined;
  }
  return argString(a);
}

function validName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && name !== DEFAULT_NAMESPACE;
}

export function cmdNsnew(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  if (!adminOnly(ctx, c) || !validateArgs(c, args, 2)) return;
  const name = nsArg(c, args[1]);
  if (name === undefined) return;
  if (!validName(name)) return c.out.push(error('This name is not allowed'));
  if (ctx.engine.get(name)) return c.out.push(error('This namespace is not available'));
  try {
    ctx.engine.create(name);
  } catch (e) {
    return engineFailure(ctx, c, undefined, e, 'Could not create namespace');
  }
  c.wrote = true;
  c.out.push(OK);
}

export function cmdNsdel(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (!adminOnly(ctx, c) || !validateArgs(c, args, 2)) return;
  const name = nsArg(c, args[1]);
  if (name === undefined) return;
  if (name === DEFAULT_NAMESPACE) return c.out.push(error('Cannot remove default namespace'));
  if (!ctx.engine.get(name)) return c.out.push(error("This namespace doesn't exists"));
  if (ns.name === name) return c.out.push(error("Cannot remove namespace you're currently using."));
  try {
    ctx.engine.delete(name);
  } catch (e) {
    return engineFailure(ctx, c, undefined, e, 'Could not delete this namespace');
  }
  ctx.detachNamespace(name);
  c.wrote = true;
  c.out.push(OK);
}

export function cmdSelect(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  if (args.length < 2) return c.out.push(error('Invalid argument'));
  const name = nsArg(c, args[1]);
  if (name === undefined) return;
  const target = ctx.engine.get(name);
  if (!target) return c.out.push(error('Namespace not found'));
  const s = target.settings();
  const password = nsPassword(ctx, target, s);
  let writable = true;
  if (password !== undefined) {
    if (args.length < 3) {
      // a public namespace with a password is readable by anyone
      if (!s.public) return c.out.push(error('Namespace protected and private'));
      writable = false;
    } else {
      if (args.length > 4) return c.out.push(error('Too many arguments'));
      if (args.length === 3) {
        if (args[2].length > 255) return c.out.push(error('Password too long'));
        if (argString(args[2]) !== password) return c.out.push(error('Access denied'));
      } else {
        if (!prefixOf(args[2], 'SECURE')) return c.out.push(error('Only SECURE extra method supported'));
        if (c.nonce === undefined) return c.out.push(error('No CHALLENGE requested, secure authentication not available'));
        if (args[3].length !== SHA1_HEX_LENGTH) return c.out.push(error('Invalid hash length'));
        const granted = passwordMatches(args[3], secureHash(c.nonce, password));
        // a nonce answers one attempt, right or wrong, as with AUTH SECURE
        c.nonce = undefined;
        if (!granted) return c.out.push(error('Access denied'));
      }
    }
  }
  c.ns = target;
  c.writable = writable;
  c.out.push(OK);
}

/** strncasecmp(arg, word, arg.length) == 0, as the reference compares keywords. */
export function prefixOf(arg: Buffer, word: string): boolean {
  if (arg.length > word.length) return false;
  return arg.toString('latin1').toUpperCase() === word.slice(0, arg.length).toUpperCase();
}

export function cmdNslist(ctx: ServerContext, c: Client): void {
  const names = ctx.engine.namespaces();
  c.out.push(arrayHeader(names.length));
  for (const n of names) c.out.pushBulk(Buffer.from(n));
}

function mb(n: number): string {
  return (n / (1024 * 1024)).toFixed(2);
}

function freeSpace(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return s.bsize * s.bavail;
  } catch {
    return undefined;
  }
}

/** The reference prints next_internal_id as bswap_64(id) with "0x%08" PRIx64. */
function bswapHex(n: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n)));
  return `0x${b.readBigUInt64BE(0).toString(16).padStart(8, '0')}`;
}

/**
 * NSINFO: the reference's lines in its order (zos parses this text).
 * space_available is its size_t subtraction, which wraps when the data
 * outgrew a lowered limit.
 */
export function nsInfoText(ctx: ServerContext, c: Client, ns: Namespace): string {
  const s = ns.settings();
  const st = ns.stats();
  const maxsize = nsMaxsize(ctx, ns, s);
  const password = nsPassword(ctx, ns, s);
  const yn = (b: boolean) => (b ? 'yes' : 'no');
  const lines = [
    '# namespace',
    `name: ${ns.name}`,
    `entries: ${st.entries}`,
    `public: ${yn(s.public)}`,
    `worm: ${yn(s.worm)}`,
    `locked: ${yn(s.locked)}`,
    `password: ${yn(password !== undefined)}`,
    `data_size_bytes: ${st.dataSize}`,
    `data_size_mb: ${mb(st.dataSize)}`,
    `data_limits_bytes: ${maxsize}`,
    `index_size_bytes: ${st.indexSize}`,
    `index_size_kb: ${(st.indexSize / 1024).toFixed(2)}`,
    `next_internal_id: ${bswapHex(st.nextId)}`,
    `mode: ${s.mode === 'seq' ? 'sequential' : 'userkey'}`,
    `stats_index_io_errors: ${st.indexIo.readFailed + st.indexIo.writeFailed}`,
    `stats_index_io_error_last: ${st.indexIo.lastFailure}`,
    `stats_index_faults: 0`,
    `stats_data_io_errors: ${st.dataIo.readFailed + st.dataIo.writeFailed}`,
    `stats_data_io_error_last: ${st.dataIo.lastFailure}`,
    `stats_data_faults: 0`,
  ];
  if (maxsize > 0n) lines.push(`space_available: ${BigInt.asUintN(64, maxsize - BigInt(st.dataSize))}`);
  const ifree = freeSpace(st.indexPath);
  if (ifree !== undefined) lines.push(`index_disk_freespace_bytes: ${ifree}`, `index_disk_freespace_mb: ${mb(ifree)}`);
  const dfree = freeSpace(st.dataPath);
  if (dfree !== undefined) lines.push(`data_disk_freespace_bytes: ${dfree}`, `data_disk_freespace_mb: ${mb(dfree)}`);
  if (c.master && password !== undefined) lines.push(`password_raw: ${password}`);
  if (c.admin) {
    lines.push(`data_path: ${st.dataPath}`, `data_active: ${st.dataActive}`, `index_path: ${st.indexPath}`, `index_active: ${st.indexActive}`);
    lines.push(`data_current_id: ${st.dataFileId}`, `data_current_offset: ${st.dataOffset}`);
  }
  return lines.join('\n') + '\n';
}

export function cmdNsinfo(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  if (!validateArgs(c, args, 2)) return;
  const name = nsArg(c, args[1]);
  if (name === undefined) return;
  const target = ctx.engine.get(name);
  if (!target) return c.out.push(error('Namespace not found'));
  c.out.pushBulk(Buffer.from(nsInfoText(ctx, c, target)));
}

function flag(value: string): boolean {
  return value[0] === '1';
}

export function cmdNsset(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  if (!adminOnly(ctx, c) || !validateArgs(c, args, 4)) return;
  const name = nsArg(c, args[1]);
  if (name === undefined) return;
  if (args[2].length > COMMAND_MAXLEN || args[3].length > COMMAND_MAXLEN) return c.out.push(error('Argument too long'));
  if (args[3].length > 63) return c.out.push(error('Invalid value'));
  const property = argString(args[2]);
  const value = argString(args[3]);
  if (name === DEFAULT_NAMESPACE) return c.out.push(error('Cannot update default namespace'));
  const target = ctx.engine.get(name);
  if (!target) return c.out.push(error('Namespace not found'));
  let change: Partial<NsSettings>;
  switch (property) {
    case 'maxsize':
      // atoll() stored in a size_t, as the reference does: -1 is 2^64 - 1, past 2^63 - 1 saturates
      change = { maxsize: BigInt.asUintN(64, argLongLong(args[3])) };
      break;
    case 'password':
      change = { password: value === '*' ? undefined : value };
      break;
    case 'public':
      change = { public: flag(value) };
      break;
    case 'worm':
      change = { worm: flag(value) };
      break;
    case 'lock':
      change = { locked: flag(value) };
      break;
    case 'freeze':
      change = { frozen: flag(value) };
      break;
    case 'mode':
      if (ctx.opts.mode !== undefined) return c.out.push(error('This server instance is configured to use a single runtime mode'));
      if (target.stats().nextId !== 0 || target.stats().entries !== 0) return c.out.push(error('Cannot change mode of used namespace'));
      if (value !== 'user' && value !== 'seq') return c.out.push(error('Invalid property value (expected: user, seq)'));
      change = { mode: value };
      break;
    default:
      return c.out.push(error('Invalid property'));
  }
  try {
    target.update(change);
  } catch (e) {
    return engineFailure(ctx, c, target, e, 'Internal Error');
  }
  ctx.hooks.run('namespace-updated', name);
  c.wrote = true;
  c.out.push(OK);
}

// The engine's namespaces can jump to new files (rotation); the contract
// does not list it yet, so NSJUMP checks for it.
interface Jumpable {
  jump(): void;
}

function canJump(ns: Namespace): ns is Namespace & Jumpable {
  return typeof (ns as Partial<Jumpable>).jump === 'function';
}

/** NSJUMP: close the current index and data files of the selected namespace and open the next id. */
export function cmdNsjump(ctx: ServerContext, c: Client, ns: Namespace): void {
  if (!adminOnly(ctx, c)) return;
  if (!canJump(ns)) return c.out.push(error('Command not supported'));
  try {
    ns.jump();
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  c.wrote = true;
  c.out.push(OK);
}

export function cmdDbsize(_ctx: ServerContext, c: Client, ns: Namespace): void {
  c.out.push(integer(ns.stats().entries));
}

export function cmdReload(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  if (!adminOnly(ctx, c) || !validateArgs(c, args, 2)) return;
  const name = nsArg(c, args[1]);
  if (name === undefined) return;
  if (!ctx.engine.get(name)) return c.out.push(error('Namespace not found'));
  let fresh: Namespace;
  try {
    fresh = ctx.engine.reload(name);
  } catch (e) {
    return engineFailure(ctx, c, undefined, e, 'Internal Error');
  }
  // clients keep their namespace across a reload, as with the reference
  for (const other of ctx.clients()) if (other.ns?.name === name) other.ns = fresh;
  c.out.push(OK);
}

export function cmdFlush(ctx: ServerContext, c: Client, ns: Namespace): void {
  const s = ns.settings();
  if (s.public || nsPassword(ctx, ns, s) === undefined) return c.out.push(error('Flushing public namespace denied'));
  try {
    ns.flush();
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Server Error');
  }
  c.wrote = true;
  c.out.push(OK);
}
