// The PostgreSQL lease backend (boot/dhcp/lease-pg.ts) against a real
// PostgreSQL started by the test: two backends on one table, as two servers
// on one segment, deciding for the same clients at the same time; offers and
// leases that run out; release and decline; restore on start; and an outage
// (the database's connection cut by a proxy) that refuses leases with one log
// line and ends without a restart. Each test uses its own subnet, so its rows
// are its own.
import test from 'ava';
import net from 'node:net';
import { sharedPostgres } from '../helpers/postgres.ts';
import { PgState } from '../../boot/state/pg.ts';
import { PgLeases, LEASE_TABLE } from '../../boot/dhcp/lease-pg.ts';
import type { PgLeasesOptions } from '../../boot/dhcp/lease-pg.ts';
import { LeaseDbError } from '../../boot/dhcp/lease-backend.ts';
import type { Grant } from '../../boot/dhcp/leases.ts';
import type { Logger } from '../../boot/log.ts';
import { silentLogger } from '../../boot/log.ts';

const pg = sharedPostgres(test);

const mac = (i: number) => `52:54:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

/** A backend with its own connection pool, as one server has. */
async function backend(net3: string, opts: Partial<PgLeasesOptions> & { url?: string } = {}): Promise<PgLeases> {
  const state = await PgState.open(opts.url ?? pg.db.url, { max: 4 });
  pg.keep(state);
  const leases = await PgLeases.open({ state, start: `${net3}.10`, end: `${net3}.250`, subnetMask: '255.255.255.0', leaseSeconds: 3600, server: 'test', log: silentLogger, ...opts });
  pg.keep(leases);
  return leases;
}

function ipOf(g: Grant): string {
  if (!g.ok) throw new Error(g.reason);
  return g.ip;
}

/** A DISCOVER seen by both servers, the REQUEST answered by the one the client chose. */
async function lease(servers: PgLeases[], i: number): Promise<string> {
  const client = { mac: mac(i) };
  const offers = await Promise.all(servers.map((s) => s.offer(client)));
  const ips = offers.map(ipOf);
  if (new Set(ips).size !== 1) throw new Error(`${client.mac} was offered different addresses: ${ips.join(', ')}`);
  return ipOf(await servers[i % servers.length]!.request(client, ips[0]!, 'selecting'));
}

async function rowsOf(net3: string): Promise<{ ip: string; client: string | null; state: string }[]> {
  const s = await PgState.open(pg.db.url, { max: 1 });
  try {
    return (await s.pool.query(`SELECT ip::text, client, state FROM ${LEASE_TABLE} WHERE subnet = $1`, [`${net3}.0/255.255.255.0`])).rows;
  } finally {
    await s.close();
  }
}

test.serial('two servers, 200 clients at once: every client has one address, no address two clients (ACKs and table)', async (t) => {
  const servers = [await backend('10.90.1'), await backend('10.90.1')];
  const acked = await Promise.all(Array.from({ length: 200 }, (_, i) => lease(servers, i)));
  const byIp = new Map<string, string[]>();
  for (const [i, ip] of acked.entries()) byIp.set(ip, [...(byIp.get(ip) ?? []), mac(i)]);
  const twice = [...byIp].filter(([, macs]) => macs.length > 1);
  t.deepEqual(twice, [], 'an address ACKed to two MACs');
  const rows = await rowsOf('10.90.1');
  t.is(rows.length, 200);
  t.is(new Set(rows.map((r) => r.ip)).size, 200, 'two rows for one address');
  t.true(rows.every((r) => r.state === 'bound'));
});

test.serial('a client that comes back (to either server) keeps its address; a renewing client with another address gets a NAK', async (t) => {
  const [a, b] = [await backend('10.90.2'), await backend('10.90.2')];
  const ip = await lease([a!, b!], 1);
  t.is(ipOf(await b!.offer({ mac: mac(1) })), ip);
  t.is(ipOf(await a!.request({ mac: mac(1) }, ip, 'renewing')), ip);
  const other = await b!.request({ mac: mac(1) }, '10.90.2.200', 'init-reboot');
  t.false(other.ok);
  t.regex(other.ok ? '' : other.reason, new RegExp(`lease is for ${ip.replaceAll('.', '\\.')}`));
  // Someone else's address, asked for outright.
  const theirs = await a!.request({ mac: mac(2) }, ip, 'init-reboot');
  t.false(theirs.ok);
  t.regex(theirs.ok ? '' : theirs.reason, /is leased to 52:54:00:00:00:01/);
});

test.serial('offers run out, leases run out, released and declined addresses: a pool of two', async (t) => {
  let now = 1_000_000;
  const small = { start: '10.90.3.10', end: '10.90.3.11', offerSeconds: 60, leaseSeconds: 600, declineSeconds: 300, now: () => now };
  const [a, b] = [await backend('10.90.3', small), await backend('10.90.3', small)];
  const first = ipOf(await a!.offer({ mac: mac(1) }));
  const second = ipOf(await b!.offer({ mac: mac(2) }));
  t.not(first, second);
  const full = await a!.offer({ mac: mac(3) });
  t.false(full.ok, 'both addresses are held by offers');
  now += 61_000;
  const third = ipOf(await a!.offer({ mac: mac(3) }));
  t.true([first, second].includes(third), 'a lapsed offer is reclaimed');
  t.is(ipOf(await a!.request({ mac: mac(3) }, third, 'selecting')), third);
  // The client whose offer was taken over is told so when it asks for it.
  const loser = third === first ? 1 : 2;
  const late = await b!.request({ mac: mac(loser) }, third, 'selecting');
  t.false(late.ok);
  // Release: the address is free for the next client at once.
  t.truthy(await b!.release({ mac: mac(3) }, third));
  t.is(await b!.release({ mac: mac(3) }, third), undefined, 'released twice');
  const other = third === first ? second : first;
  const holderOfOther = third === first ? 2 : 1;
  t.is(ipOf(await b!.request({ mac: mac(holderOfOther) }, other, 'selecting')), other);
  t.is(ipOf(await a!.offer({ mac: mac(4) })), third);
  // A bound lease that ran out is reclaimed too.
  t.is(ipOf(await a!.request({ mac: mac(4) }, third, 'selecting')), third);
  t.false((await a!.offer({ mac: mac(5) })).ok);
  now += 601_000;
  const reclaimed = ipOf(await b!.offer({ mac: mac(5) }));
  t.true([first, second].includes(reclaimed));
  // Decline: the address leaves the pool for declineSeconds, then comes back.
  t.deepEqual(await b!.decline({ mac: mac(5) }, reclaimed), { declined: reclaimed, until: now + 300_000 });
  const rows = await rowsOf('10.90.3');
  t.true(rows.some((r) => r.ip === String(ipToNumber(reclaimed)) && r.state === 'declined' && r.client === null));
  const afterDecline = await a!.offer({ mac: mac(6) });
  t.true(afterDecline.ok && afterDecline.ip !== reclaimed, 'the declined address is not offered');
  now += 301_000;
  t.true((await a!.offer({ mac: mac(7) })).ok);
});

function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

test.serial('restore on start: a new backend on the same table knows the clients and keeps their addresses', async (t) => {
  const a = await backend('10.90.4');
  const ips = await Promise.all([1, 2, 3].map((i) => lease([a], i)));
  await a.close();
  const again = await backend('10.90.4');
  t.is(again.list().length, 3);
  t.deepEqual(again.list().map((l) => l.state), ['bound', 'bound', 'bound']);
  for (const [k, i] of [1, 2, 3].entries()) {
    t.true(await again.knows({ mac: mac(i) }));
    t.is(ipOf(await again.request({ mac: mac(i) }, ips[k]!, 'init-reboot')), ips[k]);
  }
  t.false(await again.knows({ mac: mac(9) }));
  // Fresh addresses skip the three taken ones without a refused INSERT.
  t.false(ips.includes(ipOf(await again.offer({ mac: mac(9) }))));
});

/** A TCP proxy to the database that the test can cut and restore on the same port. */
async function cuttableProxy(port: number): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listen = (at: number) =>
    new Promise<number>((resolve, reject) => {
      server = net.createServer((c) => {
        const up = net.connect(port, '127.0.0.1');
        for (const s of [c, up]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        c.pipe(up).pipe(c);
      });
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => resolve((server!.address() as net.AddressInfo).port));
    });
  const cut = async () => {
    await new Promise<void>((r) => {
      server?.close(() => r());
      for (const s of sockets) s.destroy();
    });
  };
  const at = await listen(0);
  return { port: at, cut, restore: () => listen(at).then(() => undefined), close: cut };
}

test.serial('database unreachable: leases refused with LeaseDbError, one log line, nothing thrown past it; back without a restart', async (t) => {
  const proxy = await cuttableProxy(pg.db.port);
  pg.keep(proxy);
  const lines: string[] = [];
  const log: Logger = { ...silentLogger, error: (m) => lines.push(`error ${m}`), warn: (m) => lines.push(`warn ${m}`) };
  const url = pg.db.url.replace(`:${pg.db.port}/`, `:${proxy.port}/`);
  const a = await backend('10.90.5', { url, log });
  t.true((await a.offer({ mac: mac(1) })).ok);
  await proxy.cut();
  for (let i = 0; i < 5; i++) await t.throwsAsync(a.offer({ mac: mac(2) }), { instanceOf: LeaseDbError, message: /unreachable/ });
  t.deepEqual(lines, ['error dhcp: lease database unreachable; no new leases until it is back']);
  await proxy.restore();
  // Probes go through once a second: the first one after the restore succeeds.
  const deadline = Date.now() + 60_000;
  let got: Grant | undefined;
  while (!got && Date.now() < deadline) {
    got = await a.offer({ mac: mac(2) }).catch((e: unknown) => {
      if (!(e instanceof LeaseDbError)) throw e;
      return new Promise<undefined>((r) => setTimeout(r, 200));
    });
  }
  t.true(got?.ok);
  t.deepEqual(lines, ['error dhcp: lease database unreachable; no new leases until it is back', 'warn dhcp: lease database reachable again; leasing resumes']);
});

test.serial('decisions waiting for the database are bounded: past maxInFlight a packet is refused at once, not queued', async (t) => {
  const a = await backend('10.90.7', { maxInFlight: 3 });
  const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => a.offer({ mac: mac(i) })));
  const busy = results.filter((r) => r.status === 'rejected' && r.reason instanceof LeaseDbError && /busy/.test(r.reason.message));
  const granted = results.filter((r) => r.status === 'fulfilled' && r.value.ok);
  t.is(busy.length + granted.length, 12);
  t.true(busy.length >= 9 - 3, `${busy.length} refused as busy`);
  t.true(granted.length >= 3);
});

test.serial('reservations: the reserved MAC gets its address from either server, nobody else does', async (t) => {
  const reservations: [string, string][] = [[mac(50), '10.90.8.200']];
  const [a, b] = [await backend('10.90.8', { reservations }), await backend('10.90.8', { reservations })];
  t.is(ipOf(await a!.offer({ mac: mac(50) })), '10.90.8.200');
  t.is(ipOf(await b!.offer({ mac: mac(50) })), '10.90.8.200');
  t.is(ipOf(await b!.request({ mac: mac(50) }, '10.90.8.200', 'selecting')), '10.90.8.200');
  const other = await a!.request({ mac: mac(51) }, '10.90.8.200', 'init-reboot');
  t.false(other.ok);
  t.regex(other.ok ? '' : other.reason, /reserved for 52:54:00:00:00:32/);
  const wrong = await a!.request({ mac: mac(50) }, '10.90.8.20', 'init-reboot');
  t.regex(wrong.ok ? '' : wrong.reason, /reserved address is 10\.90\.8\.200/);
  t.not(ipOf(await a!.offer({ mac: mac(51) })), '10.90.8.200');
});

test.serial('the database refusing (the table dropped under the server): LeaseDbError per decision, one log line per distinct error', async (t) => {
  const lines: string[] = [];
  const log: Logger = { ...silentLogger, error: (m) => lines.push(m) };
  const a = await backend('10.90.6', { log });
  const s = await PgState.open(pg.db.url, { max: 1 });
  try {
    await s.pool.query(`DROP TABLE ${LEASE_TABLE}`);
  } finally {
    await s.close();
  }
  for (let i = 0; i < 3; i++) await t.throwsAsync(a.offer({ mac: mac(i) }), { instanceOf: LeaseDbError, message: /refused: .*does not exist/ });
  t.deepEqual(lines, ['dhcp: lease database refused a decision; no lease for those clients']);
});
