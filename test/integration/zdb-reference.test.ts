// Differential tests against the reference 0-db binary, run when one is
// given in ZDB_REFERENCE (Debian has no 0-db package, so CI has none): the
// same command script goes to both servers and every reply must match byte
// for byte (timestamps near now, nonces and free space aside); the files
// each one wrote must hold the same entries; each must serve what the
// other wrote, after a clean stop and after a torn tail.
import test from 'ava';
import type { Implementation } from 'ava';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { removeDir, startZdb, tempDir } from '../helpers/zdb-process.ts';
import { startReference, stopChild } from '../../harness/zdb-reference.ts';
import { RespClient, RespClosedError, type RespReply } from '../../zdb/resp/client.ts';
import { readNamespace } from '../helpers/zdb-reader.ts';

/** A reply, or the connection closed by the server instead of answering. */
type Answer = RespReply | { type: 'closed' };

const local = (port: number) => ({ host: '127.0.0.1', port });

const REF = process.env.ZDB_REFERENCE;
/** Without a reference the tests are skipped, and their titles say why (scripts/test.sh lists skipped titles). */
const refTest: (title: string, fn: Implementation<[]>) => void = REF
  ? (title, fn) => test.serial(title, fn)
  : (title, fn) => test.skip(`${title} [needs ZDB_REFERENCE=<a 0-db v2 binary>; Debian packages none]`, fn);
const ADMIN = 'adm1n';
const TS = '1700000000';
/** one reply may take this long on a loaded 2-core machine; past it the step is a difference */
const STEP_DEADLINE_MS = 15000;

interface Server {
  name: string;
  port: number;
  dataDir: string;
  indexDir: string;
  /** how the process ended, undefined while it runs */
  exitStatus(): string | undefined;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function startRef(dir: string, flags: string[]): Promise<Server> {
  const p = await startReference(REF!, dir, flags);
  return { name: '0-db', port: p.port, dataDir: p.dataDir, indexDir: p.indexDir, exitStatus: p.exitStatus, stop: (signal) => p.stop(signal) };
}

async function startOurs(dir: string, flags: string[]): Promise<Server> {
  const p = await startZdb(flags, { dir });
  const exited = p.exited.then(() => undefined);
  return {
    name: 'zeroboot',
    port: p.port,
    dataDir: p.dataDir,
    indexDir: p.indexDir,
    exitStatus: () => (p.proc.exitCode !== null ? `exit ${p.proc.exitCode}` : p.proc.signalCode !== null ? `signal ${p.proc.signalCode}` : undefined),
    stop: (signal = 'SIGINT') => stopChild(p.proc, exited, signal, 10000),
  };
}

/** Servers a test started, stopped (by pid) in its finally, whatever failed. */
class Started {
  private readonly list: Server[] = [];
  async add(start: Promise<Server>): Promise<Server> {
    const s = await start;
    this.list.push(s);
    return s;
  }
  async stopAll(): Promise<void> {
    for (const s of this.list) await s.stop();
  }
}

/** A reply as text, with what legitimately differs between two runs masked. */
function show(a: Answer, now: number): string {
  switch (a.type) {
    case 'closed':
      return '<closed>';
    case 'simple':
      return `+${a.text}`;
    case 'error':
      return `-${a.text}`;
    case 'integer':
      return Math.abs(Number(a.value) - now) < 600 ? ':<now>' : `:${a.value}`;
    case 'bulk':
      return a.value === null ? '$nil' : `$${JSON.stringify(a.value.toString('latin1'))}`;
    case 'array':
      return a.items === null ? '*nil' : `[${a.items.map((i) => show(i, now)).join(', ')}]`;
  }
}

/** NSINFO as key: value lines, without free space and directories (different disks and dirs). */
function showInfo(a: Answer): string {
  if (a.type !== 'bulk' || !a.value) return show(a, 0);
  return a.value
    .toString()
    .split('\n')
    .filter((l) => !/_freespace_|^data_path|^index_path/.test(l))
    // the current files by namespace and name (the directories differ)
    .map((l) => l.replace(/^((?:data|index)_active: ).*\/([^/]+\/[^/]+)$/, '$1.../$2'))
    .join('\n');
}

type Args = (string | Buffer)[];
type Conn = 'a' | 'b' | 'c' | 'd';
interface Step {
  conn?: Conn;
  cmd: Args | ((last: Answer) => Args);
  view?: 'exact' | 'info' | 'kind';
  /** a known fault of the reference release build: sent to ours only, never compared */
  refDefect?: string;
}

const big = (n: number) => Buffer.alloc(40000, n);
const seqKey = (n: number) => {
  const k = Buffer.alloc(8);
  k.writeBigUInt64LE(BigInt(n));
  return k;
};

// A script over every command, their refusals included; SETs carry an admin
// timestamp so entries (and SCAN items) are the same on both servers.
function script(): Step[] {
  const s: Step[] = [];
  const a = (cmd: Args, view: Step['view'] = 'exact') => s.push({ conn: 'a', cmd, view });
  const b = (cmd: Args, view: Step['view'] = 'exact') => s.push({ conn: 'b', cmd, view });
  const c = (cmd: Args, view: Step['view'] = 'exact') => s.push({ conn: 'c', cmd, view });
  const d = (cmd: Args, view: Step['view'] = 'exact') => s.push({ conn: 'd', cmd, view });
  b(['PING']);
  b(['SET', 'anon', 'v']);
  b(['SET', 'x', 'y', TS]);
  b(['NSNEW', 'nope']);
  b(['AUTH', 'wrong']);
  b(['TIME'], 'kind');
  b(['NSINFO', 'default'], 'info');
  a(['AUTH', ADMIN]);
  a(['SET', 'k1', 'v1', TS]);
  a(['SET', 'k1', 'v1', TS]);
  a(['SET', 'k1', 'v222', TS]);
  a(['SET', 'k1', 'v3', TS]);
  a(['SET', 'k2', 'second', TS]);
  a(['SET', '', 'x', TS]);
  a(['SET', Buffer.alloc(256, 0x61), 'x', TS]);
  a(['SET', 'onlytwo']);
  a(['GET', 'k1']);
  a(['GET', 'missing']);
  a(['GET']);
  a(['MGET', 'k1', 'missing', 'k2']);
  a(['EXISTS', 'k1']);
  a(['EXISTS', 'missing']);
  a(['CHECK', 'k1']);
  a(['CHECK', 'missing']);
  a(['LENGTH', 'k2']);
  a(['LENGTH', 'missing']);
  a(['KEYTIME', 'k2']);
  a(['KEYTIME', 'missing']);
  a(['HISTORY', 'k1']);
  s.push({ conn: 'a', cmd: (last) => ['HISTORY', 'k1', cursorOf(last)] });
  a(['DEL', 'k2']);
  a(['DEL', 'k2']);
  a(['GET', 'k2']);
  a(['EXISTS', 'k2']);
  for (let i = 0; i < 30; i++) a(['SET', `big${i}`, big(i), TS]);
  a(['DBSIZE']);
  a(['SCAN']);
  s.push({ conn: 'a', cmd: (last) => ['SCAN', cursorOf(last)] });
  s.push({ conn: 'a', cmd: (last) => ['SCAN', cursorOf(last)] });
  a(['RSCAN']);
  s.push({ conn: 'a', cmd: (last) => ['RSCAN', cursorOf(last)] });
  a(['SCANX']);
  a(['KSCAN', 'big2']);
  a(['KEYCUR', 'big10']);
  s.push({ conn: 'a', cmd: (last) => ['SCAN', cursorOf(last)] });
  a(['KEYCUR', 'missing']);
  a(['SCAN', 'garbage']);
  a(['NSLIST']);
  a(['NSINFO', 'default'], 'info');
  a(['NSINFO', 'nope']);
  a(['NSNEW', 'ns1']);
  a(['NSNEW', 'ns1']);
  a(['NSNEW', 'bad/name']);
  a(['NSSET', 'ns1', 'password', 'secret']);
  // maxsize is atoll() into a size_t: -1 is 2^64 - 1, past 2^63 - 1 saturates, digits then text count the digits
  for (const size of ['-1', '18446744073709551616', '12abc', 'abc']) {
    a(['NSSET', 'ns1', 'maxsize', size]);
    a(['NSINFO', 'ns1'], 'info');
  }
  a(['NSSET', 'ns1', 'maxsize', '100']);
  a(['NSSET', 'ns1', 'colour', 'red']);
  a(['NSSET', 'default', 'public', '0']);
  a(['NSINFO', 'ns1'], 'info');
  b(['SELECT', 'ns1']);
  b(['SELECT', 'ns1', 'bad']);
  b(['SELECT', 'ns1', 'secret']);
  b(['SET', 'small', 'tiny', TS]);
  b(['SET', 'small', 'tiny']);
  b(['SET', 'large', Buffer.alloc(200, 1)]);
  a(['NSSET', 'ns1', 'public', '1']);
  a(['NSSET', 'ns1', 'worm', '1']);
  a(['SELECT', 'ns1']);
  a(['SET', 'w', 'x']);
  a(['SELECT', 'ns1', 'secret']);
  a(['SET', 'w', 'x', TS]);
  a(['DEL', 'w']);
  a(['NSSET', 'ns1', 'worm', '0']);
  a(['NSSET', 'ns1', 'lock', '1']);
  a(['SET', 'w2', 'x', TS]);
  a(['GET', 'w']);
  a(['NSSET', 'ns1', 'lock', '0']);
  a(['NSSET', 'ns1', 'mode', 'seq']);
  a(['FLUSH']);
  a(['DBSIZE']);
  a(['NSDEL', 'ns1']);
  a(['NSDEL', 'default']);
  a(['NSNEW', 'sq']);
  a(['NSSET', 'sq', 'mode', 'seq']);
  a(['NSSET', 'sq', 'mode', 'other']);
  a(['SELECT', 'sq']);
  a(['SET', '', 'first', TS]);
  a(['SET', '', 'second', TS]);
  a(['SET', 'nokey', 'x', TS]);
  a(['GET', seqKey(0)]);
  a(['GET', seqKey(1)]);
  a(['GET', seqKey(2)]);
  a(['GET', Buffer.from([0, 0, 0, 0])]);
  a(['SET', seqKey(0), 'updated', TS]);
  a(['SET', seqKey(0), 'updated', TS]);
  a(['SET', seqKey(7), 'nothere', TS]);
  a(['HISTORY', seqKey(0)]);
  a(['SCAN']);
  a(['INDEX', 'DIRTY']);
  a(['NSINFO', 'sq'], 'info');
  a(['SELECT', 'default']);
  a(['NSDEL', 'ns1']);
  a(['NSLIST']);
  // with maxsize 2^64 - 1 the reference's limit + replaced value wraps: an overwrite is refused
  a(['NSNEW', 'wrap']);
  a(['NSSET', 'wrap', 'maxsize', '-1']);
  a(['SELECT', 'wrap']);
  a(['SET', 'k', 'v12345', TS]);
  a(['SET', 'k', 'other', TS]);
  a(['SET', 'k2', 'fits', TS]);
  a(['SELECT', 'default']);
  a(['NSDEL', 'wrap']);
  // names: 0-db refuses only '.', '..', '/', 'default' and more than 128 bytes; text stops at a NUL
  const names = ['a\r\nb', '+OK', '$3\r\nfoo', '*1\r\n$4\r\nPING', '-ERR', 'tab\there', 'nul\0after', ' ', '.hidden', '\x1b[31mred', 'é', 'DEFAULT', 'x'.repeat(128), 'x'.repeat(129), '.', '..', 'a/b', ''];
  for (const n of names) a(['NSNEW', n]);
  a(['NSLIST']);
  a(['SELECT', 'a\r\nb']);
  a(['SET', 'k', 'v', TS]);
  a(['NSINFO', 'a\r\nb'], 'info');
  a(['SELECT', 'nul']);
  a(['SELECT', 'default']);
  for (const n of names) a(['NSDEL', n]);
  a(['NSLIST']);
  a(['HOOKS']);
  a(['INDEX', 'DIRTY']);
  a(['INDEX', 'DIRTY', 'RESET']);
  a(['INDEX', 'DIRTY']);
  a(['DATA', 'RAW', '0', '28']);
  a(['DATA', 'RAW', '9', '28']);
  a(['DATA', 'RAW', '0', '165']);
  a(['DATA', 'RAW', '0', '4']);
  a(['DATA', 'RAW', '0', '-1']);
  a(['DATA', 'RAW', '0', '99999999']);
  a(['DATA', 'RAW', 'zero', '28']);
  a(['DATA', 'RAW', '1', '28']);
  a(['DATA', 'RAW', '0']);
  a(['DATA', 'RAW', '0', '28', 'extra']);
  a(['NSJUMP']);
  a(['DBSIZE']);
  a(['WAIT']);
  a(['MIRROR']);
  a(['FOO']);
  a(['INFO'], 'kind');
  d(['AUTH', ADMIN]);
  d(['MASTER']);
  const master = 'a MASTER connection appends an owner id to every command and the release build strips the last argument, so commands without one go unanswered';
  s.push({ conn: 'd', cmd: ['NSINFO', 'sq'], view: 'info', refDefect: master });
  s.push({ conn: 'd', cmd: ['PING'], refDefect: master });
  // b had selected ns1, which a deleted
  const gone = "the release build segfaults on a command from a connection whose namespace was deleted";
  s.push({ conn: 'b', cmd: ['GET', 'small'], refDefect: gone });
  s.push({ conn: 'b', cmd: ['PING'], refDefect: gone });
  c(['AUTH', 'SECURE', 'abc']);
  c(['AUTH', 'SECURE', 'CHALLENGE'], 'kind');
  s.push({ conn: 'c', cmd: (last) => ['AUTH', 'SECURE', secure(last, 'wrong')] });
  c(['AUTH', 'SECURE', 'CHALLENGE'], 'kind');
  s.push({ conn: 'c', cmd: (last) => ['AUTH', 'SECURE', secure(last, ADMIN)] });
  c(['NSNEW', 'viasecure']);
  c(['NSLIST']);
  c(['DEL', 'missing']);
  c(['STOP']);
  c(['PING']);
  return s;
}

// Without --admin everyone is admin and AUTH is disabled, but SELECT SECURE
// still needs a challenge.
function scriptWithoutAdmin(): Step[] {
  const s: Step[] = [];
  const a = (cmd: Args, view: Step['view'] = 'exact') => s.push({ conn: 'a', cmd, view });
  a(['AUTH', 'x']);
  a(['AUTH', 'SECURE', 'abc']);
  a(['AUTH', 'SECURE', 'CHALLENGE'], 'kind');
  a(['AUTH', 'SECURE', '0'.repeat(40)]);
  a(['AUTH', 'a', 'b', 'c']);
  a(['AUTH']);
  a(['NSNEW', 'p']);
  a(['NSSET', 'p', 'password', 'pw']);
  a(['NSSET', 'p', 'public', '0']);
  a(['SELECT', 'p', 'SECURE', '0'.repeat(40)]);
  a(['AUTH', 'SECURE', 'CHALLENGE'], 'kind');
  s.push({ conn: 'a', cmd: (last) => ['SELECT', 'p', 'SECURE', secure(last, 'wrong')] });
  a(['AUTH', 'SECURE', 'CHALLENGE'], 'kind');
  s.push({ conn: 'a', cmd: (last) => ['SELECT', 'p', 'SECURE', secure(last, 'pw')] });
  a(['SET', 'k', 'v', TS]);
  a(['NSINFO', 'p'], 'info');
  a(['INDEX', 'DIRTY']);
  return s;
}

function cursorOf(a: Answer): Buffer {
  if (a.type === 'array' && a.items && a.items[0]?.type === 'bulk' && a.items[0].value) return a.items[0].value;
  return Buffer.from('none');
}

function secure(a: Answer, password: string): string {
  const nonce = a.type === 'simple' ? a.text : a.type === 'bulk' && a.value ? a.value.toString() : '';
  return createHash('sha1').update(`${nonce}:${password}`).digest('hex');
}

function shownArgs(step: Step, args: Args): string {
  // arguments taken from the last reply (a cursor, a nonce's hash) show as such: the replies carry them
  if (typeof step.cmd === 'function') return `${args[0]} <from the last reply>`;
  return args.map((x) => (typeof x === 'string' ? x : x.length > 16 ? `<${x.length} bytes>` : `0x${x.toString('hex')}`)).join(' ');
}

interface Run {
  /** one line per step; undefined for the steps not sent */
  lines: (string | undefined)[];
  /** why the run stopped early (the server died), if it did */
  stopped?: string;
}

/**
 * Sends each step on its connection and records the reply. A step without a
 * reply within STEP_DEADLINE_MS records that, and its connection is dropped;
 * when the server dies the run ends there. `skipDefects` leaves out the steps
 * the reference is known to mishandle.
 */
async function runScript(srv: Server, steps: Step[], skipDefects: boolean): Promise<Run> {
  const conns = new Map<Conn, RespClient | undefined>();
  const lines: (string | undefined)[] = [];
  const none: Answer = { type: 'closed' };
  const last: Record<Conn, Answer> = { a: none, b: none, c: none, d: none };
  try {
    for (const name of ['a', 'b', 'c', 'd'] as const) conns.set(name, await RespClient.connect(local(srv.port)));
    for (const step of steps) {
      if (skipDefects && step.refDefect) {
        lines.push(undefined);
        continue;
      }
      const c = step.conn ?? 'a';
      const args = typeof step.cmd === 'function' ? step.cmd(last[c]) : step.cmd;
      const session = conns.get(c);
      let text: string;
      if (!session) text = '<connection dropped after a missed deadline>';
      else {
        try {
          const reply: Answer = await session.command(args, { timeoutMs: STEP_DEADLINE_MS }).catch((e: Error) => {
            if (e instanceof RespClosedError) return { type: 'closed' } as const;
            throw e;
          });
          last[c] = reply;
          const now = Math.floor(Date.now() / 1000);
          text = step.view === 'info' ? showInfo(reply) : step.view === 'kind' ? reply.type : show(reply, now);
        } catch {
          text = `<no reply within ${STEP_DEADLINE_MS / 1000} s>`;
          session.close();
          conns.set(c, undefined);
        }
      }
      lines.push(`${c}> ${shownArgs(step, args)}\n${text}`);
      const exit = srv.exitStatus();
      if (exit) return { lines, stopped: `${srv.name} ended (${exit}) after step ${lines.length - 1}` };
    }
  } finally {
    for (const c of conns.values()) c?.close();
  }
  return { lines };
}

/** The steps whose replies differ (known reference faults aside), the first first. */
function firstDifferences(ours: Run, theirs: Run, steps: Step[], max = 15): string {
  const lines: string[] = [];
  for (const r of [theirs, ours]) if (r.stopped) lines.push(r.stopped);
  const indent = (x: string | undefined) => (x ?? '<not run>').replace(/\n/g, '\n            ');
  for (let i = 0; i < steps.length && lines.length < max; i++) {
    if (steps[i].refDefect) continue;
    if (ours.lines[i] !== theirs.lines[i]) lines.push(`step ${i}:\n  0-db:     ${indent(theirs.lines[i])}\n  zeroboot: ${indent(ours.lines[i])}`);
  }
  return lines.join('\n');
}

function knownDefects(steps: Step[]): string {
  return steps
    .map((s, i) => (s.refDefect ? `step ${i} (${Array.isArray(s.cmd) ? shownArgs(s, s.cmd) : 'computed'}): ${s.refDefect}` : ''))
    .filter(Boolean)
    .join('\n');
}

/** Every key with its value, through SCAN and GET, in the namespace given. */
async function contents(port: number, ns: string, password?: string): Promise<string[]> {
  const c = await RespClient.connect(local(port));
  try {
    const sel = await c.command(password ? ['SELECT', ns, password] : ['SELECT', ns]);
    if (sel.type !== 'simple') throw new Error(`SELECT ${ns}: ${show(sel, 0)}`);
    const out: string[] = [];
    let r = await c.command(['SCAN']);
    while (r.type === 'array' && r.items) {
      const list = r.items[1];
      if (list.type !== 'array' || !list.items) break;
      for (const item of list.items) {
        if (item.type !== 'array' || !item.items || item.items[0].type !== 'bulk') continue;
        const key = item.items[0].value!;
        const v = await c.command(['GET', key]);
        out.push(`${key.toString('hex')} = ${show(v, 0).slice(0, 80)} (${v.type === 'bulk' && v.value ? createHash('sha1').update(v.value).digest('hex') : ''})`);
      }
      r = await c.command(['SCAN', cursorOf(r)]);
    }
    return out;
  } finally {
    c.close();
  }
}

refTest('the same command script gets the same replies from 0-db and from ours', async (t) => {
  t.timeout(10 * 60000);
  const dirs = [await tempDir('zdb-ref-'), await tempDir('zdb-ours-')];
  const flags = ['--admin', ADMIN, '--datasize', '524288'];
  const started = new Started();
  try {
    const steps = script();
    t.log(`known faults of the reference, not compared:\n${knownDefects(steps)}`);
    const ref = await started.add(startRef(dirs[0], flags));
    const theirs = await runScript(ref, steps, true);
    const ours = await started.add(startOurs(dirs[1], flags));
    const mine = await runScript(ours, steps, false);
    t.is(firstDifferences(mine, theirs, steps), '', 'replies differ (first differing step first)');
    await started.stopAll();
    // what each wrote, entry for entry (header times aside)
    for (const ns of ['default', 'sq']) {
      const r = readNamespace(ref.indexDir, ref.dataDir, ns);
      const o = readNamespace(ours.indexDir, ours.dataDir, ns);
      const strip = (n: typeof r) => ({
        descriptor: n.descriptor,
        index: n.index.map((e) => ({ ...e, timestamp: e.timestamp === Number(TS) ? e.timestamp : 'now' })),
        data: n.data.map((e) => ({ ...e, timestamp: e.timestamp === Number(TS) ? e.timestamp : 'now' })),
        indexFiles: n.indexHeaders.map((h) => [h.version, h.fileid, h.mode]),
        dataFiles: n.dataHeaders.map((h) => [h.version, h.created, h.opened, h.fileid]),
      });
      t.deepEqual(strip(o), strip(r), `namespace ${ns}: files differ`);
    }
  } finally {
    await started.stopAll();
    for (const d of dirs) await removeDir(d);
  }
});

refTest('without --admin: the same replies (AUTH disabled, challenges for SELECT SECURE)', async (t) => {
  t.timeout(5 * 60000);
  const dirs = [await tempDir('zdb-ref-'), await tempDir('zdb-ours-')];
  const started = new Started();
  try {
    const steps = scriptWithoutAdmin();
    const theirs = await runScript(await started.add(startRef(dirs[0], [])), steps, true);
    const mine = await runScript(await started.add(startOurs(dirs[1], [])), steps, false);
    t.is(firstDifferences(mine, theirs, steps), '', 'replies differ (first differing step first)');
  } finally {
    await started.stopAll();
    for (const d of dirs) await removeDir(d);
  }
});

refTest('each server serves what the other wrote, namespaces and rotation included', async (t) => {
  t.timeout(10 * 60000);
  const dirs = [await tempDir('zdb-ref-'), await tempDir('zdb-ours-')];
  const flags = ['--admin', ADMIN, '--datasize', '524288'];
  const started = new Started();
  try {
    const writers = [await started.add(startRef(dirs[0], flags)), await started.add(startOurs(dirs[1], flags))];
    const before: string[][][] = [];
    for (const w of writers) {
      const run = await runScript(w, script(), true);
      t.is(run.stopped, undefined);
      before.push([await contents(w.port, 'default'), await contents(w.port, 'sq')]);
      await w.stop();
    }
    t.deepEqual(before[1], before[0], 'the two servers hold different data after the script');
    t.true(before[0][0].length > 30);
    // swap: ours on the reference's files, the reference on ours
    const readers = [await started.add(startOurs(dirs[0], flags)), await started.add(startRef(dirs[1], flags))];
    for (const [i, r] of readers.entries()) {
      const after = [await contents(r.port, 'default'), await contents(r.port, 'sq')];
      t.deepEqual(after, before[i], `${r.name} reading ${writers[i].name}'s files`);
      await r.stop();
    }
  } finally {
    await started.stopAll();
    for (const d of dirs) await removeDir(d);
  }
});

refTest('a torn tail: both servers serve the same keys from the same damaged files', async (t) => {
  t.timeout(5 * 60000);
  const dir = await tempDir('zdb-torn-');
  const copy = await tempDir('zdb-torn-copy-');
  const flags = ['--admin', ADMIN];
  const started = new Started();
  try {
    const w = await started.add(startOurs(dir, flags));
    const c = await RespClient.connect(local(w.port));
    for (let i = 0; i < 20; i++) await c.command(['SET', `key${i}`, Buffer.alloc(1000 + i, i)], { timeoutMs: STEP_DEADLINE_MS });
    c.close();
    await w.stop('SIGKILL');
    const data = path.join(w.dataDir, 'default', 'd0');
    const index = path.join(w.indexDir, 'default', 'i0');
    // cut the last data entry in half and leave a partial index entry
    fs.truncateSync(data, fs.statSync(data).size - 600);
    fs.truncateSync(index, fs.statSync(index).size - 10);
    fs.cpSync(dir, copy, { recursive: true });
    const ref = await started.add(startRef(copy, flags));
    const theirs = await contents(ref.port, 'default');
    await ref.stop();
    const ours = await started.add(startOurs(dir, flags));
    const mine = await contents(ours.port, 'default');
    await ours.stop();
    t.deepEqual(mine, theirs);
    t.is(mine.length, 19);
  } finally {
    await started.stopAll();
    await removeDir(copy);
    await removeDir(dir);
  }
});
