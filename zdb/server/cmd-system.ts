// PING TIME AUTH HOOKS INDEX DATA INFO STOP MIRROR MASTER.
import type { Namespace, RawDataEntry } from '../engine/index.ts';
import { OK, error, arrayHeader, integer, simple } from '../resp/encoder.ts';
import type { Client } from './client.ts';
import type { ServerContext } from './context.ts';
import { adminOnly, argInt, argLongLong, engineFailure, validateArgs } from './context.ts';
import { newChallenge, passwordMatches, secureHash, SHA1_HEX_LENGTH } from './auth.ts';
import { prefixOf } from './cmd-namespace.ts';

export function cmdPing(_ctx: ServerContext, c: Client): void {
  c.out.push('+PONG\r\n');
}

export function cmdTime(_ctx: ServerContext, c: Client): void {
  const ns = process.hrtime.bigint();
  const now = Date.now();
  const sec = String(Math.floor(now / 1000));
  // microseconds within the second: ms from the clock, the rest from hrtime
  const usec = String((now % 1000) * 1000 + Number((ns / 1000n) % 1000n));
  c.out.push(`*2\r\n$${sec.length}\r\n${sec}\r\n$${usec.length}\r\n${usec}\r\n`);
}

export function cmdAuth(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  const admin = ctx.opts.admin;
  if (args.length === 2) {
    if (admin === undefined) return c.out.push(error('Authentication disabled'));
    if (!validateArgs(c, args, 2)) return;
    if (args[1].length > 128) return c.out.push(error('Password too long'));
    if (passwordMatches(args[1], admin)) {
      c.admin = true;
      return c.out.push(OK);
    }
    return c.out.push(error('Access denied'));
  }
  if (args.length === 3) {
    if (!validateArgs(c, args, 3)) return;
    if (!prefixOf(args[1], 'SECURE')) return c.out.push(error('Only SECURE extra method supported'));
    // as 0-db: a challenge is handed out even when there is no admin password (SELECT SECURE uses it)
    if (prefixOf(args[2], 'CHALLENGE')) {
      c.nonce = newChallenge();
      return c.out.push(simple(c.nonce));
    }
    if (admin === undefined) return c.out.push(error('Authentication disabled'));
    if (c.nonce === undefined) return c.out.push(error('No CHALLENGE requested, secure authentication not available'));
    if (args[2].length !== SHA1_HEX_LENGTH) return c.out.push(error('Invalid hash length'));
    const granted = passwordMatches(args[2], secureHash(c.nonce, admin));
    // a nonce answers one attempt, right or wrong
    c.nonce = undefined;
    if (!granted) return c.out.push(error('Access denied'));
    c.admin = true;
    return c.out.push(OK);
  }
  c.out.push(error('Unexpected arguments'));
}

export function cmdHooks(ctx: ServerContext, c: Client): void {
  if (!adminOnly(ctx, c)) return;
  const runs = ctx.hooks.list();
  c.out.push(arrayHeader(runs.length));
  for (const r of runs) {
    c.out.push('*6\r\n');
    c.out.pushBulk(Buffer.from(r.event));
    c.out.push(arrayHeader(r.args.length));
    for (const a of r.args) c.out.pushBulk(Buffer.from(a));
    c.out.push(integer(r.pid) + integer(r.created) + integer(r.finished) + integer(r.status));
  }
}

export function cmdInfo(ctx: ServerContext, c: Client): void {
  const st = ctx.stats;
  const io = ctx.engine.ioTotals();
  const now = Math.floor(Date.now() / 1000);
  const m = (n: number) => (n / (1024 * 1024)).toFixed(2);
  const text = [
    '# server',
    'server_name: 0-db (zdb)',
    'server_revision: zeroboot',
    'engine_revision: zeroboot',
    `instance_id: ${ctx.instanceId}`,
    `boot_time: ${st.bootTime}`,
    `uptime: ${now - st.bootTime}`,
    '',
    '# clients',
    `clients_lifetime: ${st.clients}`,
    '',
    '# internals',
    'sequential_key_size: 8',
    '',
    '# stats',
    `commands_executed: ${st.commandsValid}`,
    `commands_failed: ${st.commandsFailed}`,
    `commands_unauthorized: ${st.adminFailed}`,
    `index_disk_read_failed: ${io.index.readFailed}`,
    `index_disk_write_failed: ${io.index.writeFailed}`,
    `data_disk_read_failed: ${io.data.readFailed}`,
    `data_disk_write_failed: ${io.data.writeFailed}`,
    `index_disk_read_bytes: ${io.index.readBytes}`,
    `index_disk_read_mb: ${m(io.index.readBytes)}`,
    `index_disk_write_bytes: ${io.index.writeBytes}`,
    `index_disk_write_mb: ${m(io.index.writeBytes)}`,
    `data_disk_read_bytes: ${io.data.readBytes}`,
    `data_disk_read_mb: ${m(io.data.readBytes)}`,
    `data_disk_write_bytes: ${io.data.writeBytes}`,
    `data_disk_write_mb: ${m(io.data.writeBytes)}`,
    `network_rx_bytes: ${st.networkRx}`,
    `network_rx_mb: ${m(st.networkRx)}`,
    `network_tx_bytes: ${st.networkTx}`,
    `network_tx_mb: ${m(st.networkTx)}`,
  ].join('\n');
  c.out.pushBulk(Buffer.from(text + '\n'));
}

/** STOP exists for leak checks in debug builds; the release build refuses it. */
export function cmdStop(_ctx: ServerContext, c: Client): void {
  c.out.push(error('Unauthorized'));
}

export function cmdMirror(ctx: ServerContext, c: Client): void {
  if (!adminOnly(ctx, c)) return;
  c.mirror = true;
  c.out.push(simple('Starting mirroring'));
}

export function cmdMaster(ctx: ServerContext, c: Client): void {
  if (!adminOnly(ctx, c)) return;
  c.master = true;
  c.out.push(simple('Hello, master'));
}

/** Longest subcommand the reference accepts (COMMAND_MAXLEN). */
const SUBCOMMAND_MAX = 256;

/** The reference's minimum-arguments check: at least `min`, none empty. */
function validateMinArgs(c: Client, args: Buffer[], min: number): boolean {
  if (args.length < min) {
    c.out.push(error('Missing arguments'));
    return false;
  }
  if (args.some((a) => a.length === 0)) {
    c.out.push(error('Invalid argument'));
    return false;
  }
  return true;
}

function subcommand(c: Client, arg: Buffer): string | undefined {
  if (arg.length > SUBCOMMAND_MAX) {
    c.out.push(error('Argument too long'));
    return undefined;
  }
  return arg.toString('latin1').toUpperCase();
}

/** INDEX DIRTY [RESET]: the index files of the namespace written since the last reset. */
export function cmdIndex(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (!adminOnly(ctx, c) || !validateMinArgs(c, args, 2)) return;
  const sub = subcommand(c, args[1]);
  if (sub === undefined) return;
  if (sub !== 'DIRTY') return c.out.push(error('Unknown INDEX subcommand'));
  if (args.length === 3) {
    const action = subcommand(c, args[2]);
    if (action === undefined) return;
    if (action !== 'RESET') return c.out.push(error('Unknown INDEX DIRTY subcommand'));
    ns.resetDirtyIndexFiles();
    return c.out.push(OK);
  }
  const ids = ns.dirtyIndexFiles();
  c.out.push(arrayHeader(ids.length) + ids.map((id) => integer(id)).join(''));
}

/**
 * DATA RAW <fileid> <offset>: the data entry stored there, [key, previous,
 * "0x<crc>", flags, timestamp, payload], as the reference answers it (its
 * numbers are atoll()s: text that is no number reads as 0).
 */
export function cmdData(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (!adminOnly(ctx, c) || !validateMinArgs(c, args, 2)) return;
  const sub = subcommand(c, args[1]);
  if (sub === undefined) return;
  if (sub !== 'RAW') return c.out.push(error('Unknown DATA subcommand'));
  if (!validateMinArgs(c, args, 4)) return;
  // fileid_t is a u32
  const fileId = Number(BigInt.asUintN(32, argLongLong(args[2])));
  const offset = argInt(args[3]);
  let entry: RawDataEntry;
  try {
    entry = ns.rawData(fileId, offset);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  c.out.push('*6\r\n');
  c.out.pushBulk(entry.key);
  c.out.push(integer(entry.previous));
  c.out.pushBulk(Buffer.from(`0x${entry.crc.toString(16).padStart(8, '0')}`));
  c.out.push(integer(entry.flags) + integer(entry.timestamp));
  c.out.pushBulk(entry.payload);
}
