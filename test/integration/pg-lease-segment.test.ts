// Two DHCP servers on one segment sharing their leases in PostgreSQL (config
// `pg`): a bridge in a namespace the test creates, each server on its own
// host of it, 200 simulated clients on a third (test/helpers/dhcp-storm-clients.ts).
// No address may be ACKed to two MACs nor held by two rows; a server killed
// (SIGKILL, by pid) in the middle of the storm leaves the clients to the
// other one, and they all complete; then the database goes away and the
// survivor keeps running without offering. The servers reach PostgreSQL (started by
// the test on the host) through its unix socket, which a network namespace
// does not hide.
import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { sharedPostgres } from '../helpers/postgres.ts';
import { startDhcp, tempDir, type ServerHandle } from '../../harness/dhcp-server.ts';
import { PgState } from '../../boot/state/pg.ts';
import { LEASE_TABLE } from '../../boot/dhcp/lease-pg.ts';
import { Netns } from './../helpers/netns.ts';
import { killPid } from '../../lib/process.ts';

const CLIENTS_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/dhcp-storm-clients.ts');
const NET = '10.91.0';
const SUBNET = `${NET}.0/255.255.255.0`;
const CLIENTS = 200;

const pg = sharedPostgres(test);

interface Storm {
  acks: { ack: string; ip: string; server: string }[];
  done: Map<string, { ip: string; server: string; tries: number }>;
  failed: string[];
  exited: Promise<number | null>;
  /** Resolves once `n` clients are done. */
  doneCount(n: number): Promise<void>;
}

function storm(host: Netns, prefix: string): Storm {
  const child: ChildProcess = host.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLIENTS_SCRIPT, String(CLIENTS), prefix, '150000']);
  const s: Storm = { acks: [], done: new Map(), failed: [], exited: new Promise((r) => child.once('close', r)), doneCount: () => Promise.resolve() };
  const waiters: [number, () => void][] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const m = JSON.parse(line) as { ack?: string; done?: string; failed?: string; ip: string; server: string; tries: number };
      if (m.ack) s.acks.push({ ack: m.ack, ip: m.ip, server: m.server });
      if (m.done) s.done.set(m.done, { ip: m.ip, server: m.server, tries: m.tries });
      if (m.failed) s.failed.push(m.failed);
    }
    for (const [n, w] of waiters) if (s.done.size >= n) w();
  });
  s.doneCount = (n) => new Promise((r) => waiters.push([n, r]));
  return s;
}

async function tableRows(): Promise<{ ip: string; mac: string | null; state: string }[]> {
  const s = await PgState.open(pg.db.url, { max: 1 });
  try {
    return (await s.pool.query(`SELECT ip::text, mac, state FROM ${LEASE_TABLE} WHERE subnet = $1`, [SUBNET])).rows;
  } finally {
    await s.close();
  }
}

/** Which MACs each address was ACKed to. */
function acksByIp(acks: Storm['acks']): Map<string, Set<string>> {
  const by = new Map<string, Set<string>>();
  for (const a of acks) by.set(a.ip, (by.get(a.ip) ?? new Set()).add(a.ack));
  return by;
}

test.serial('two servers, one PostgreSQL, 200 clients; one server SIGKILLed mid-storm: every client completes, no address given twice', async (t) => {
  const ns = await Netns.create('zbpgl');
  const tmp = await tempDir('zb-pg-lease-');
  const servers: ServerHandle[] = [];
  try {
    await ns.bridge('br0', `${NET}.254/24`);
    // The unix socket: the namespaces cannot reach the host's loopback, but they see its files.
    const url = `postgresql:///postgres?host=${encodeURIComponent(pg.db.dir)}&port=${pg.db.port}&user=zeroboot`;
    for (const k of [1, 2]) {
      const host = await ns.host('br0', { cidr: `${NET}.${k}/24` });
      servers.push(await startDhcp(host, tmp.dir, {
        pg: url,
        server: {
          address: `${NET}.${k}`,
          interfaces: ['eth0'],
          stateDir: path.join(tmp.dir, `state${k}`),
          dhcp: { mode: 'full', pool: { start: `${NET}.10`, end: `${NET}.250`, subnetMask: '255.255.255.0', leaseSeconds: 3600 } },
        },
      }, { quiet: true, name: `server${k}` }));
    }
    const clients = await ns.host('br0', { cidr: `${NET}.253/24` });
    // Without a route, a send to 255.255.255.255 fails (ENETUNREACH) before it reaches the wire.
    await clients.ip('route', 'add', 'default', 'dev', 'eth0');
    const s = storm(clients, '52:54:00:91');
    // Mid-storm: a quarter of the clients are through, the rest are on their way.
    await s.doneCount(CLIENTS / 4);
    const victim = servers[0]!;
    killPid(victim.child.pid!, 'SIGKILL');
    const code = await s.exited;
    t.is(code, 0);
    t.deepEqual(s.failed, [], 'clients that never got a lease');
    t.is(s.done.size, CLIENTS);
    const twice = [...acksByIp(s.acks)].filter(([, macs]) => macs.size > 1).map(([ip, macs]) => `${ip}: ${[...macs].join(' ')}`);
    t.deepEqual(twice, [], 'addresses ACKed to two MACs');
    const rows = await tableRows();
    t.is(rows.filter((r) => r.state === 'bound').length, CLIENTS);
    t.is(new Set(rows.map((r) => r.ip)).size, rows.length, 'two rows for one address');
    // Both servers served, and the survivor finished what the victim left.
    const by = (ip: string) => [...s.done.values()].filter((d) => d.server === ip).length;
    t.true(by(`${NET}.1`) > 0 && by(`${NET}.2`) > CLIENTS / 2, `leases by server: .1 ${by(`${NET}.1`)}, .2 ${by(`${NET}.2`)}`);
    t.log(`leases by server: .1 ${by(`${NET}.1`)} (killed after ${CLIENTS / 4} clients were done), .2 ${by(`${NET}.2`)}; most DISCOVERs by one client: ${Math.max(...[...s.done.values()].map((d) => d.tries))}`);

    // The database gone: the survivor keeps running, offers nothing, and says so once.
    await pg.db.stop();
    const late = await clients.exec(process.execPath, ['--disable-warning=ExperimentalWarning', CLIENTS_SCRIPT, '5', '52:54:00:92', '4000'], { timeout: 60_000 });
    t.is(late.stdout.match(/"failed"/g)?.length, 5, late.stdout);
    const survivor = servers[1]!;
    t.is(survivor.child.exitCode, null, 'the server ended when the database went away');
    t.is(survivor.output().match(/lease database unreachable/g)?.length, 1, survivor.output());
  } finally {
    for (const x of servers) await x.stop('SIGKILL').catch(() => undefined);
    await ns.destroy();
    await tmp.remove();
  }
});
