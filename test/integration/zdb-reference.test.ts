// Differential tests against the reference 0-db binary, run when one is
// given in ZDB_REFERENCE (Debian has no 0-db package, so CI has none): the
// same command script goes to both servers and every reply must match byte
// for byte (timestamps near now, nonces and free space aside); the files
// each one wrote must hold the same entries; each must serve what the
// other wrote, after a clean stop and after a torn tail.
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, removeDir, startZdb, tempDir, waitListening, type ZdbProcess } from '../helpers/zdb-process.ts';
import { RespSession, type Answer } from '../helpers/resp-session.ts';
import { readNamespace } from '../helpers/zdb-reader.ts';

const REF = process.env.ZDB_REFERENCE;
const refTest = REF ? test.serial : test.skip;
const ADMIN = 'adm1n';
const TS = '1700000000';

interface Server {
  name: string;
  port: number;
  dataDir: string;
  indexDir: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function startReference(dir: string, flags: string[]): Promise<Server> {
  const port = await freePort();
  const dataDir = path.join(dir, 'data');
  const indexDir = path.join(dir, 'index');
  const child = spawn(REF!, ['--listen', '127.0.0.1', '--port', String(port), '--data', dataDir, '--index', indexDir, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await waitListening(port, child, () => out);
  return {
    name: '0-db',
    port,
    dataDir,
    indexDir,
    stop: async (signal = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

async function startOurs(dir: string, flags: string[]): Promise<Server> {
  const p: ZdbProcess = await startZdb(flags, { dir });
  return {
    name: 'zeroboot',
    port: p.port,
    dataDir: p.dataDir,
    indexDir: p.indexDir,
    stop: async (signal = 'SIGINT') => {
      await p.kill(signal);
    },
  };
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

/** NSINFO as key: value lines, without free space and paths (different disks and dirs). */
function showInfo(a: Answer): string {
  if (a.type !== 'bulk' || !a.value) return show(a, 0);
  return a.value
    .toString()
    .split('\n')
    .filter((l) => !/_freespace_|^data_path|^index_path/.test(l))
    .join('\n');
}

type Args = (string | Buffer)[];
interface Step {
  conn?: 'a' | 'b' | 'c';
  cmd: Args | ((last: Answer) => Args);
  view?: 'exact' | 'info' | 'kind';
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
  b(['PING']);
  b(['SET', 'anon', 'v']);
  b(['SET', 'x', 'y', TS]);
  b(['NSNEW', 'nope']);
  b(['AUTH', 'wrong']);
  b(['TIME'], 'kind');
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
  a(['NSINFO', 'sq'], 'info');
  a(['SELECT', 'default']);
  a(['NSDEL', 'ns1']);
  a(['NSLIST']);
  a(['HOOKS']);
  a(['INDEX', 'DIRTY']);
  a(['INDEX', 'DIRTY', 'RESET']);
  a(['INDEX', 'DIRTY']);
  a(['DATA', 'RAW', '0', '28']);
  a(['DATA', 'RAW', '9', '28']);
  a(['NSJUMP']);
  a(['DBSIZE']);
  a(['WAIT']);
  a(['MIRROR']);
  a(['MASTER']);
  a(['NSINFO', 'sq'], 'info');
  a(['FOO']);
  a(['INFO'], 'kind');
  // b had selected ns1, which a deleted
  b(['GET', 'small']);
  b(['PING']);
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

function cursorOf(a: Answer): Buffer {
  if (a.type === 'array' && a.items && a.items[0]?.type === 'bulk' && a.items[0].value) return a.items[0].value;
  return Buffer.from('none');
}

function secure(a: Answer, password: string): string {
  const nonce = a.type === 'simple' ? a.text : a.type === 'bulk' && a.value ? a.value.toString() : '';
  return createHash('sha1').update(`${nonce}:${password}`).digest('hex');
}

async function runScript(srv: Server, steps: Step[]): Promise<string[]> {
  const conns = { a: await RespSession.connect(srv.port), b: await RespSession.connect(srv.port), c: await RespSession.connect(srv.port) };
  const out: string[] = [];
  const none: Answer = { type: 'closed' };
  const last: Record<'a' | 'b' | 'c', Answer> = { a: none, b: none, c: none };
  try {
    for (const step of steps) {
      const c = step.conn ?? 'a';
      const args = typeof step.cmd === 'function' ? step.cmd(last[c]) : step.cmd;
      const reply = await conns[c].command(args);
      last[c] = reply;
      const now = Math.floor(Date.now() / 1000);
      const text = step.view === 'info' ? showInfo(reply) : step.view === 'kind' ? reply.type : show(reply, now);
      // arguments taken from the last reply (a cursor, a nonce's hash) show as such: the replies carry them
      const shown =
        typeof step.cmd === 'function'
          ? `${args[0]} <from the last reply>`
          : args.map((x) => (typeof x === 'string' ? x : x.length > 16 ? `<${x.length} bytes>` : `0x${x.toString('hex')}`)).join(' ');
      out.push(`${c}> ${shown}\n${text}`);
    }
  } finally {
    for (const c of Object.values(conns)) c.close();
  }
  return out;
}

function firstDifferences(ours: string[], theirs: string[], max = 15): string {
  const lines: string[] = [];
  for (let i = 0; i < Math.max(ours.length, theirs.length) && lines.length < max; i++) {
    if (ours[i] !== theirs[i]) lines.push(`step ${i}:\n  0-db:     ${theirs[i]?.replace(/\n/g, '\n            ')}\n  zeroboot: ${ours[i]?.replace(/\n/g, '\n            ')}`);
  }
  return lines.join('\n');
}

/** Every key with its value, through SCAN and GET, in the namespace given. */
async function contents(port: number, ns: string, password?: string): Promise<string[]> {
  const c = await RespSession.connect(port);
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
  const dirs = [await tempDir('zdb-ref-'), await tempDir('zdb-ours-')];
  const flags = ['--admin', ADMIN, '--datasize', '524288'];
  const ref = await startReference(dirs[0], flags);
  const ours = await startOurs(dirs[1], flags);
  try {
    const steps = script();
    const theirs = await runScript(ref, steps);
    const mine = await runScript(ours, steps);
    t.is(firstDifferences(mine, theirs), '', 'replies differ');
    await ref.stop();
    await ours.stop();
    // what each wrote, entry for entry (header times aside)
    for (const ns of ['default', 'sq']) {
      const r = readNamespace(ref.indexDir, ref.dataDir, ns);
      const o = readNamespace(ours.indexDir, ours.dataDir, ns);
      const strip = (n: typeof r) => ({
        descriptor: n.descriptor,
        index: n.index.map((e) => ({ ...e, timestamp: e.timestamp === Number(TS) ? e.timestamp : 'now' })),
        data: n.data.map((e) => ({ ...e, timestamp: e.timestamp === Number(TS) ? e.timestamp : 'now' })),
        indexFiles: n.indexHeaders.map((h) => [h.version, h.fileid, h.mode]),
        dataFiles: n.dataHeaders.map((h) => [h.version, h.fileid]),
      });
      t.deepEqual(strip(o), strip(r), `namespace ${ns}: files differ`);
    }
  } finally {
    await ref.stop();
    await ours.stop();
    for (const d of dirs) await removeDir(d);
  }
});

refTest('each server serves what the other wrote, namespaces and rotation included', async (t) => {
  const dirs = [await tempDir('zdb-ref-'), await tempDir('zdb-ours-')];
  const flags = ['--admin', ADMIN, '--datasize', '524288'];
  try {
    const writers = [await startReference(dirs[0], flags), await startOurs(dirs[1], flags)];
    const before: string[][][] = [];
    for (const w of writers) {
      await runScript(w, script());
      before.push([await contents(w.port, 'default'), await contents(w.port, 'sq')]);
      await w.stop();
    }
    t.deepEqual(before[1], before[0], 'the two servers hold different data after the script');
    t.true(before[0][0].length > 30);
    // swap: ours on the reference's files, the reference on ours
    const readers = [await startOurs(dirs[0], flags), await startReference(dirs[1], flags)];
    for (const [i, r] of readers.entries()) {
      const after = [await contents(r.port, 'default'), await contents(r.port, 'sq')];
      t.deepEqual(after, before[i], `${r.name} reading ${writers[i].name}'s files`);
      await r.stop();
    }
  } finally {
    for (const d of dirs) await removeDir(d);
  }
});

refTest('a torn tail: both servers serve the same keys from the same damaged files', async (t) => {
  const dir = await tempDir('zdb-torn-');
  const flags = ['--admin', ADMIN];
  try {
    const w = await startOurs(dir, flags);
    const c = await RespSession.connect(w.port);
    for (let i = 0; i < 20; i++) await c.command(['SET', `key${i}`, Buffer.alloc(1000 + i, i)]);
    c.close();
    await w.stop('SIGKILL');
    const data = path.join(w.dataDir, 'default', 'd0');
    const index = path.join(w.indexDir, 'default', 'i0');
    // cut the last data entry in half and leave a partial index entry
    fs.truncateSync(data, fs.statSync(data).size - 600);
    fs.truncateSync(index, fs.statSync(index).size - 10);
    const copy = await tempDir('zdb-torn-copy-');
    fs.cpSync(dir, copy, { recursive: true });
    const ref = await startReference(copy, flags);
    const theirs = await contents(ref.port, 'default');
    await ref.stop();
    const ours = await startOurs(dir, flags);
    const mine = await contents(ours.port, 'default');
    await ours.stop();
    t.deepEqual(mine, theirs);
    t.is(mine.length, 19);
    await removeDir(copy);
  } finally {
    await removeDir(dir);
  }
});
