// The command table and dispatcher. Names match like the reference's
// strncasecmp(name, entry, len(name)): case-insensitive, and a prefix picks
// the first entry it begins (`GE` is GET). WAIT lives here as it watches
// this table.
import type { Namespace } from '../engine/index.ts';
import { error } from '../resp/encoder.ts';
import type { Client } from './client.ts';
import type { ServerContext } from './context.ts';
import { argInt } from './context.ts';
import { cmdCheck, cmdDel, cmdExists, cmdGet, cmdKeytime, cmdLength, cmdMget, cmdSet } from './cmd-dataset.ts';
import { cmdHistory, cmdKeycur, cmdKscan, cmdRscan, cmdScan } from './cmd-scan.ts';
import { cmdDbsize, cmdFlush, cmdNsdel, cmdNsinfo, cmdNsjump, cmdNslist, cmdNsnew, cmdNsset, cmdReload, cmdSelect } from './cmd-namespace.ts';
import { cmdAuth, cmdData, cmdHooks, cmdIndex, cmdInfo, cmdMaster, cmdMirror, cmdPing, cmdStop, cmdTime } from './cmd-system.ts';

export type Handler = (ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]) => void;

export interface CommandSpec {
  name: string;
  handler: Handler;
}

const WAIT_DEFAULT_MS = 5000;
const WAIT_MIN_MS = 100;
const WAIT_MAX_MS = 30 * 60 * 1000;

function cmdAsterisk(_ctx: ServerContext, c: Client): void {
  c.out.push(error('This is not a valid command'));
}

function cmdWait(ctx: ServerContext, c: Client, _ns: Namespace, args: Buffer[]): void {
  if (args.length !== 2 && args.length !== 3) return c.out.push(error('Invalid arguments'));
  const spec = findCommand(args[1]);
  if (!spec) return c.out.push(error('Unknown command to watch'));
  let timeout = WAIT_DEFAULT_MS;
  if (args.length === 3) {
    if (args[2].length > 16) return c.out.push(error('Invalid timeout'));
    timeout = argInt(args[2]);
    if (timeout < WAIT_MIN_MS || timeout > WAIT_MAX_MS) return c.out.push(error('Invalid timeout'));
  }
  ctx.watch(c, spec.name, timeout);
}

// Order matters for prefixes, as in the reference (SET before SETX, SCAN before SCANX).
const TABLE: CommandSpec[] = [
  { name: '*', handler: cmdAsterisk },
  { name: 'WAIT', handler: cmdWait },
  { name: 'MIRROR', handler: cmdMirror },
  { name: 'MASTER', handler: cmdMaster },
  { name: 'PING', handler: cmdPing },
  { name: 'TIME', handler: cmdTime },
  { name: 'AUTH', handler: cmdAuth },
  { name: 'HOOKS', handler: cmdHooks },
  { name: 'INDEX', handler: cmdIndex },
  { name: 'DATA', handler: cmdData },
  { name: 'SET', handler: cmdSet },
  { name: 'SETX', handler: cmdSet },
  { name: 'GET', handler: cmdGet },
  { name: 'MGET', handler: cmdMget },
  { name: 'DEL', handler: cmdDel },
  { name: 'EXISTS', handler: cmdExists },
  { name: 'CHECK', handler: cmdCheck },
  { name: 'SCAN', handler: cmdScan },
  { name: 'SCANX', handler: cmdScan },
  { name: 'RSCAN', handler: cmdRscan },
  { name: 'KSCAN', handler: cmdKscan },
  { name: 'HISTORY', handler: cmdHistory },
  { name: 'KEYCUR', handler: cmdKeycur },
  { name: 'LENGTH', handler: cmdLength },
  { name: 'KEYTIME', handler: cmdKeytime },
  { name: 'INFO', handler: cmdInfo },
  { name: 'STOP', handler: cmdStop },
  { name: 'DBSIZE', handler: cmdDbsize },
  { name: 'NSNEW', handler: cmdNsnew },
  { name: 'NSDEL', handler: cmdNsdel },
  { name: 'NSLIST', handler: cmdNslist },
  { name: 'NSSET', handler: cmdNsset },
  { name: 'NSINFO', handler: cmdNsinfo },
  { name: 'NSJUMP', handler: cmdNsjump },
  { name: 'SELECT', handler: cmdSelect },
  { name: 'RELOAD', handler: cmdReload },
  { name: 'FLUSH', handler: cmdFlush },
];

const EXACT = new Map(TABLE.map((s) => [s.name, s]));

export const COMMAND_NAMES: readonly string[] = TABLE.map((s) => s.name);

const GET_SPEC = EXACT.get('GET')!;
const SET_SPEC = EXACT.get('SET')!;

export function findCommand(name: Buffer): CommandSpec | undefined {
  // GET and SET, in any case, without a string made per request
  if (name.length === 3 && (name[1] | 0x20) === 0x65 && (name[2] | 0x20) === 0x74) {
    const first = name[0] | 0x20;
    if (first === 0x67) return GET_SPEC;
    if (first === 0x73) return SET_SPEC;
  }
  if (name.length > 16) return undefined;
  const upper = name.toString('latin1').toUpperCase();
  const exact = EXACT.get(upper);
  if (exact) return exact;
  for (const s of TABLE) if (s.name.startsWith(upper)) return s;
  return undefined;
}

/** Runs one request for `c`; replies go to c.out. */
export function dispatch(ctx: ServerContext, c: Client, args: Buffer[]): void {
  const ns = c.ns;
  if (!ns) {
    c.out.push(error('Your active namespace is not available anymore (probably removed).'));
    c.closing = true;
    return;
  }
  c.commands++;
  const spec = findCommand(args[0]);
  if (!spec) {
    ctx.stats.commandsFailed++;
    c.out.push(error('Command not supported'));
    return;
  }
  ctx.stats.commandsValid++;
  spec.handler(ctx, c, ns, args);
  ctx.executed(c, spec.name);
}
