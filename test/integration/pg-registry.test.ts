// Two real `zeroboot serve` processes sharing one PostgreSQL (started by the
// test): a node that reports to A and then to B is one registry entry; a
// new key for its MAC is refused by both, as is a report replayed to the
// other server; two servers racing to bind one MAC to two keys end with one
// binding (the database's constraint decides); and the registry outlives a
// restart of both servers. The machine list is shared too: a machine one
// server saw is listed by the other, with its stage and who saw it.
import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type Postgres } from '../../harness/postgres.ts';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.ts';
import { httpCall } from '../helpers/http-call.ts';
import { collectInventory } from '../../agent/inventory/index.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import { loadOrCreateIdentity, type Identity } from '../../agent/identity.ts';
import { buildReport, signReport } from '../../agent/report.ts';
import { REPORT_PATH, type SignedEnvelope } from '../../lib/signed-report.ts';

const FIX = join(import.meta.dirname, '../fixtures/agent');
const inventory = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, [{ sizeBytes: 1e12, type: 'hdd' }]);
const MAC = '52:54:00:cc:00:01';
const RACE_MAC = '52:54:00:cc:00:99';
/** Another server's change reaches this one by NOTIFY: milliseconds, but a loaded machine gets a generous deadline. */
const SEEN_DEADLINE_MS = 30_000;

interface Server {
  serve: ServeProcess;
  api: string;
}

let dir: string;
let db: Postgres;
const servers: Record<'a' | 'b', Server | undefined> = { a: undefined, b: undefined };

async function configFile(name: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `server:
  address: 127.0.0.1
  stateDir: ${join(dir, `state-${name}`)}
  ipxeDir: /usr/lib/ipxe
  dhcp: { mode: off }
  tftp: { enabled: false }
  http: { host: 127.0.0.1, port: 0 }
  management: { host: 127.0.0.1, port: 0, auth: none }
profiles:
  - { name: zos, kernel: zos/vmlinuz }
groups:
  - { name: all, profile: zos, selector: {} }
pg: ${db.url}
`);
  return file;
}

async function start(name: 'a' | 'b'): Promise<Server> {
  const serve = await startServe(await configFile(name));
  const api = /"api":"([^"]+)"/.exec(serve.output())![1];
  const s = { serve, api };
  servers[name] = s;
  return s;
}

async function stop(name: 'a' | 'b'): Promise<void> {
  const s = servers[name];
  servers[name] = undefined;
  if (s) await stopServe(s.serve.proc);
}

const post = (s: Server, env: SignedEnvelope, from: string) =>
  httpCall(`${s.serve.url}${REPORT_PATH}`, { method: 'POST', from, headers: { 'content-type': 'application/json' }, body: JSON.stringify(env) });

interface NodeSummary {
  nodeId: string;
  macs: string[];
  firstSeen: string;
  lastReport: string;
  reports: number;
}

async function nodes(s: Server): Promise<NodeSummary[]> {
  const r = await httpCall(`${s.api}/nodes`, { from: '127.0.0.1' });
  if (r.status !== 200) throw new Error(`GET /api/nodes: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { nodes: NodeSummary[] }).nodes;
}

/** The server's view of a node, once it satisfies `ok` (another server's change arrives by NOTIFY). */
async function seen(s: Server, nodeId: string, ok: (n: NodeSummary) => boolean): Promise<NodeSummary> {
  const deadline = Date.now() + SEEN_DEADLINE_MS;
  for (;;) {
    const n = (await nodes(s)).find((x) => x.nodeId === nodeId);
    if (n && ok(n)) return n;
    if (Date.now() > deadline) throw new Error(`${s.api} never showed ${nodeId} as expected; last: ${JSON.stringify(n)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function identityIn(name: string): Promise<Identity> {
  await mkdir(join(dir, name), { recursive: true });
  return (await loadOrCreateIdentity([join(dir, name)])).identity;
}

const report = (identity: Identity, mac: string, timestamp = Date.now()): SignedEnvelope =>
  signReport({ ...buildReport({ identity, inventory, capacity: cap, disks: [], zdbs: [], bootMac: mac, runmode: 'dev' }), timestamp }, identity);

let node: Identity;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zb-pg-registry-'));
  db = await startPostgres();
  await Promise.all([start('a'), start('b')]);
  node = await identityIn('node');
});

test.after.always(async () => {
  await Promise.all([stop('a'), stop('b')]);
  await db?.stop();
  await rm(dir, { recursive: true, force: true });
});

test.serial('a node reports to A, B lists it; then it reports to B: one entry, one node id, both reports counted', async (t) => {
  const a = servers.a!;
  const b = servers.b!;
  const first = await post(a, report(node, MAC), '127.0.0.21');
  t.is(first.status, 200, first.body);
  t.deepEqual(JSON.parse(first.body), { nodeId: node.nodeId, firstContact: true });
  const onB = await seen(b, node.nodeId, () => true);
  t.deepEqual(onB.macs, [MAC]);
  t.is(onB.reports, 1);

  const second = await post(b, report(node, MAC), '127.0.0.22');
  t.is(second.status, 200, second.body);
  t.deepEqual(JSON.parse(second.body), { nodeId: node.nodeId, firstContact: false }, 'B knows the node A bound');
  for (const s of [a, b]) {
    const n = await seen(s, node.nodeId, (x) => x.reports === 2);
    t.deepEqual(n.macs, [MAC]);
    t.true(Date.parse(n.lastReport) >= Date.parse(n.firstSeen), 'first seen by A, last report to B');
    t.is((await nodes(s)).length, 1);
  }
});

test.serial('another key for the bound MAC is refused by both servers, and a report replayed to the other server too', async (t) => {
  const intruder = await identityIn('intruder');
  for (const [s, from] of [[servers.a!, '127.0.0.23'], [servers.b!, '127.0.0.24']] as const) {
    const r = await post(s, report(intruder, MAC), from);
    t.is(r.status, 403, r.body);
    t.is(JSON.parse(r.body).code, 'mac-bound-to-another-key');
  }
  const once = report(node, MAC);
  t.is((await post(servers.a!, once, '127.0.0.25')).status, 200);
  const replay = await post(servers.b!, once, '127.0.0.25');
  t.is(replay.status, 409, replay.body);
  t.is(JSON.parse(replay.body).code, 'replayed');
  t.false((await nodes(servers.b!)).some((n) => n.nodeId === intruder.nodeId));
});

test.serial('A and B bind one MAC to two keys at the same moment: exactly one wins, the other refuses', async (t) => {
  const [k1, k2] = [await identityIn('race-1'), await identityIn('race-2')];
  const c = new pg.Client({ connectionString: db.url });
  // Watched from another connection: pg_stat_activity and pg_locks read inside the locking transaction would be its snapshot.
  const watch = new pg.Client({ connectionString: db.url });
  await Promise.all([c.connect(), watch.connect()]);
  try {
    // Hold both servers' MAC inserts until both have read "no binding": the race, made certain.
    await c.query('BEGIN');
    await c.query('LOCK TABLE zeroboot_node_macs IN SHARE MODE');
    const answers = Promise.all([post(servers.a!, report(k1, RACE_MAC), '127.0.0.26'), post(servers.b!, report(k2, RACE_MAC), '127.0.0.27')]);
    const deadline = Date.now() + SEEN_DEADLINE_MS;
    for (;;) {
      const waiting = (await watch.query("SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'zeroboot_node_macs'::regclass AND mode = 'RowExclusiveLock' AND NOT granted")).rows[0].n;
      if (waiting === 2) break;
      if (Date.now() > deadline) throw new Error(`${waiting} server(s) waiting to insert into the MAC table, not 2`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.query('COMMIT');
    const [ra, rb] = await answers;
    t.deepEqual([ra.status, rb.status].sort(), [200, 403], `${ra.body} / ${rb.body}`);
    const loser = ra.status === 403 ? ra : rb;
    t.is(JSON.parse(loser.body).code, 'mac-bound-to-another-key');
    const winner = ra.status === 200 ? k1 : k2;
    const rows = (await c.query('SELECT node_id FROM zeroboot_node_macs WHERE mac = $1', [RACE_MAC])).rows;
    t.deepEqual(rows, [{ node_id: winner.nodeId }]);
    for (const s of [servers.a!, servers.b!]) await seen(s, winner.nodeId, (n) => n.macs.includes(RACE_MAC));
    t.false((await nodes(servers.a!)).some((n) => n.nodeId === (winner === k1 ? k2 : k1).nodeId));
  } finally {
    await Promise.all([c.end(), watch.end()]);
  }
});

interface MachineRow {
  mac: string;
  stage?: string;
  lastSeen?: string;
  server?: string;
}

async function machine(s: Server, mac: string, ok: (m: MachineRow) => boolean): Promise<MachineRow> {
  const deadline = Date.now() + SEEN_DEADLINE_MS;
  for (;;) {
    const r = await httpCall(`${s.api}/machines`, { from: '127.0.0.1' });
    const m = (JSON.parse(r.body) as { machines: MachineRow[] }).machines.find((x) => x.mac === mac);
    if (m && ok(m)) return m;
    if (Date.now() > deadline) throw new Error(`${s.api}/machines never showed ${mac} as expected; last: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const BOOTING = '52:54:00:cc:00:10';

/** The dashboard feed's first message (every machine once). */
async function firstFeed(s: Server): Promise<{ changed: (MachineRow & { state: string })[] }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), SEEN_DEADLINE_MS);
  try {
    const res = await fetch(`${s.api}/events`, { signal: ac.signal });
    let text = '';
    for await (const chunk of res.body!) {
      text += Buffer.from(chunk).toString();
      const m = /^data: (.*)\n\n/m.exec(text);
      if (m) return JSON.parse(m[1]);
    }
    throw new Error(`the feed ended without a message: ${text}`);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

test.serial('a machine that asked A for its script is listed by B with its stage and A as the server; then B sees it itself', async (t) => {
  const [a, b] = [servers.a!, servers.b!];
  const script = await httpCall(`${a.serve.url}/ipxe?mac=${BOOTING.replaceAll(':', '-')}`, { from: '127.0.0.30' });
  t.is(script.status, 200, script.body);
  const onB = await machine(b, BOOTING, () => true);
  t.is(onB.stage, 'http.script');
  t.is(onB.server, a.serve.url);
  const onA = await machine(a, BOOTING, () => true);
  t.is(onA.server, undefined, 'A lists it as its own');
  // B's dashboard feed judges it by A's stage: progressing (it just asked for its script), not stopped for want of local events.
  const row = (await firstFeed(b)).changed.find((r) => r.mac === BOOTING);
  t.like(row, { server: a.serve.url, stage: 'http.script', state: 'progressing' });

  t.is((await httpCall(`${b.serve.url}/ipxe?mac=${BOOTING.replaceAll(':', '-')}`, { from: '127.0.0.31' })).status, 200);
  const later = await machine(a, BOOTING, (m) => m.server === b.serve.url);
  t.true(later.lastSeen! > onA.lastSeen!, 'A shows the newer stage B saw');
  t.is((await machine(b, BOOTING, () => true)).server, undefined);
});

test.serial('stop both servers, start them again: the registry is intact and still binds', async (t) => {
  const before = await nodes(servers.a!);
  const bBefore = servers.b!.serve.url;
  await Promise.all([stop('a'), stop('b')]);
  await Promise.all([start('a'), start('b')]);
  for (const s of [servers.a!, servers.b!]) {
    const after = await nodes(s);
    t.deepEqual(after.map((n) => [n.nodeId, n.macs, n.reports]).sort(), before.map((n) => [n.nodeId, n.macs, n.reports]).sort());
  }
  // Both timelines are gone with their processes; what B saw last comes back from the database (B listens on a new port now).
  for (const s of [servers.a!, servers.b!]) t.is((await machine(s, BOOTING, () => true)).server, bBefore, 'listed after the restart, as B saw it last');
  const intruder = await identityIn('intruder');
  const r = await post(servers.b!, report(intruder, MAC), '127.0.0.28');
  t.is(r.status, 403, r.body);
  t.is((await post(servers.b!, report(node, MAC), '127.0.0.28')).status, 200);
});
