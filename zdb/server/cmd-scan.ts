// SCAN/SCANX RSCAN KEYCUR HISTORY KSCAN. Cursors are the engine's opaque
// bytes; the replies are shaped as the reference sends them.
import type { Namespace, ScanPage, HistoryItem } from '../engine/index.ts';
import { NIL, error } from '../resp/encoder.ts';
import type { Client } from './client.ts';
import type { ServerContext } from './context.ts';
import { engineFailure, notFrozen, validateArgs } from './context.ts';

// The reference fills a page for a fixed time slice; a fixed count keeps
// one SCAN from holding the event loop while still walking quickly.
const SCAN_PAGE = 512;
// index_bkey_t: u8 idlength, u32 fileid, u32 length, u32 idxoffset, u32 crc
const CURSOR_SIZE = 17;

function scan(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[], reverse: boolean): void {
  if (!notFrozen(c, ns.settings())) return;
  let cursor: Buffer | undefined;
  if (args.length > 1) {
    cursor = args[1];
    if (cursor.length !== CURSOR_SIZE) return c.out.push(error('Invalid key format'));
  }
  let page: ScanPage | undefined;
  try {
    page = ns.scan(cursor, SCAN_PAGE, reverse);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  if (!page || page.items.length === 0 || !page.next) return c.out.push(error('No more data'));
  c.out.push('*2\r\n');
  c.out.pushBulk(page.next);
  c.out.push(`*${page.items.length}\r\n`);
  for (const it of page.items) {
    c.out.push('*3\r\n');
    c.out.pushBulk(it.key);
    c.out.push(`:${it.size}\r\n:${it.timestamp}\r\n`);
  }
}

export function cmdScan(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  scan(ctx, c, ns, args, false);
}

export function cmdRscan(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  scan(ctx, c, ns, args, true);
}

export function cmdKeycur(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (!validateArgs(c, args, 2)) return;
  if (!notFrozen(c, ns.settings())) return;
  let cur: Buffer | undefined;
  try {
    cur = ns.keyCursor(args[1]);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  if (!cur) return c.out.push(error('Key not found'));
  c.out.pushBulk(cur);
}

export function cmdHistory(ctx: ServerContext, c: Client, ns: Namespace, args: Buffer[]): void {
  if (args.length !== 2 && args.length !== 3) return c.out.push(error('Invalid arguments'));
  if (!notFrozen(c, ns.settings())) return;
  let h: HistoryItem | undefined;
  try {
    h = ns.history(args[1], args.length === 3 ? args[2] : undefined);
  } catch (e) {
    return engineFailure(ctx, c, ns, e, 'Internal Error');
  }
  if (!h) return c.out.push(error(args.length === 2 ? 'Key not found' : 'No more history'));
  c.out.push('*3\r\n');
  if (h.next) c.out.pushBulk(h.next);
  else c.out.push(NIL);
  // the reference sends the timestamp as a bulk string, not an integer
  const ts = String(h.timestamp);
  c.out.push(`$${ts.length}\r\n${ts}\r\n`);
  c.out.pushBulk(h.payload);
}

/** KSCAN is compiled out of the reference's release build; it answers this. */
export function cmdKscan(_ctx: ServerContext, c: Client): void {
  c.out.push(error('Command disabled in release code, not yet available'));
}
