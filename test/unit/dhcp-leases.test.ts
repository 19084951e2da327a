import test from 'ava';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { LeasePool, LeasePoolError } from '../../boot/dhcp/leases.ts';
import type { ClientRef, LeasePoolOptions, LeaseRecord } from '../../boot/dhcp/leases.ts';
import { LeaseFile, LeaseFileError } from '../../boot/dhcp/lease-file.ts';

const run = promisify(execFile);

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';

function pool(opts: Partial<LeasePoolOptions> = {}, clock = { t: 1_000_000 }) {
  return new LeasePool({ start: '10.0.0.10', end: '10.0.0.12', subnetMask: '255.255.255.0', leaseSeconds: 100, now: () => clock.t, ...opts });
}

function ack(p: LeasePool, mac: string | ClientRef, requested?: string): string {
  const o = p.offer(mac, requested);
  if (!o.ok) throw new Error(o.reason);
  const r = p.request(mac, o.ip, 'selecting');
  if (!r.ok) throw new Error(r.reason);
  return r.ip;
}

test('DISCOVER then REQUEST binds the offered address and yields a record to persist', (t) => {
  const p = pool();
  const o = p.offer(A);
  t.true(o.ok);
  if (!o.ok) return;
  t.is(o.ip, '10.0.0.10');
  const r = p.request(A, o.ip, 'selecting', 'node1');
  t.true(r.ok);
  if (!r.ok) return;
  t.deepEqual(r.record, { mac: A, ip: '10.0.0.10', state: 'bound', expires: 1_000_000 + 100_000, hostname: 'node1' });
  t.deepEqual(p.list().map((l) => [l.mac, l.ip, l.state]), [[A, '10.0.0.10', 'bound']]);
});

test('distinct clients get distinct addresses; the same client keeps its address', (t) => {
  const p = pool();
  const a = ack(p, A);
  const b = ack(p, B);
  t.not(a, b);
  t.is(ack(p, A), a);
  const o = p.offer(B);
  t.true(o.ok && o.ip === b);
});

test('a REQUEST for an address we did not offer is refused', (t) => {
  const p = pool();
  p.offer(A);
  const r = p.request(A, '10.0.0.12', 'selecting');
  t.false(r.ok);
  if (!r.ok) t.regex(r.reason, /not offered/);
});

test('the pool runs out, then expired leases are reclaimed', (t) => {
  const clock = { t: 1_000_000 };
  const p = pool({}, clock);
  ack(p, A);
  ack(p, B);
  ack(p, C);
  const d = p.offer('52:54:00:00:00:0d');
  t.false(d.ok);
  if (!d.ok) t.regex(d.reason, /exhausted/);
  clock.t += 101_000;
  const again = p.offer('52:54:00:00:00:0d');
  t.true(again.ok);
  // The reclaimed address now belongs to the new client only.
  t.is(p.list().filter((l) => l.ip === (again.ok ? again.ip : '')).length, 1);
});

test('an outstanding offer holds its address until it times out', (t) => {
  const clock = { t: 1_000_000 };
  const p = pool({ start: '10.0.0.10', end: '10.0.0.10', offerSeconds: 5 }, clock);
  t.true(p.offer(A).ok);
  t.false(p.offer(B).ok);
  clock.t += 6_000;
  const b = p.offer(B);
  t.true(b.ok && b.ip === '10.0.0.10');
});

test('the server, router, network and broadcast addresses are never offered', (t) => {
  const p = new LeasePool({ start: '10.0.0.0', end: '10.0.0.255', subnetMask: '255.255.255.0', leaseSeconds: 60, exclude: ['10.0.0.1', '10.0.0.2'] });
  const seen = new Set<string>();
  for (let i = 0; i < 252; i++) seen.add(ack(p, `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`));
  t.is(seen.size, 252);
  for (const ip of ['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.255']) t.false(seen.has(ip), ip);
  t.false(p.offer('02:00:00:00:01:00').ok);
});

test('a reservation gives its MAC the reserved address (even outside the range) and nobody else', (t) => {
  const p = pool({ reservations: [[C, '10.0.0.50'], [B, '10.0.0.11']] });
  t.is(ack(p, C), '10.0.0.50');
  t.is(ack(p, A), '10.0.0.10');
  t.is(ack(p, '52:54:00:00:00:0d'), '10.0.0.12');
  t.false(p.offer('52:54:00:00:00:0e').ok, '10.0.0.11 stays free for its owner');
  t.is(ack(p, B), '10.0.0.11');
  t.true(p.list().find((l) => l.mac === B)!.reserved);
  const steal = p.request(A, '10.0.0.50', 'init-reboot');
  t.false(steal.ok);
});

test('reservations outside the subnet or reserved twice are configuration errors', (t) => {
  t.throws(() => pool({ reservations: [[A, '10.1.0.5']] }), { instanceOf: LeasePoolError, message: /outside the pool's subnet/ });
  t.throws(() => pool({ reservations: [[A, '10.0.0.5'], [B, '10.0.0.5']] }), { instanceOf: LeasePoolError, message: /reserved for both/ });
  t.throws(() => new LeasePool({ start: '10.0.0.10', end: '10.0.1.10', subnetMask: '255.255.255.0', leaseSeconds: 60 }), { instanceOf: LeasePoolError });
});

test('INIT-REBOOT and RENEW: own or free addresses are confirmed, others refused', (t) => {
  const p = pool();
  const a = ack(p, A);
  t.true(p.request(A, a, 'renewing').ok);
  t.true(p.request(A, a, 'init-reboot').ok);
  const other = p.request(B, a, 'init-reboot');
  t.false(other.ok);
  if (!other.ok) t.regex(other.reason, /leased to/);
  const wrongNet = p.request(B, '192.168.1.5', 'init-reboot');
  t.false(wrongNet.ok);
  if (!wrongNet.ok) t.regex(wrongNet.reason, /not in the pool subnet/);
  // Authoritative: a client whose lease we lost may keep a free address.
  t.true(p.request(C, '10.0.0.12', 'init-reboot').ok);
});

test('RELEASE frees the address but the client gets it back next time', (t) => {
  const p = pool();
  const a = ack(p, A);
  t.is(p.release(B, a), undefined, 'not B\'s lease');
  const rec = p.release(A, a);
  t.like(rec, { mac: A, ip: a, state: 'released' });
  t.is(p.list()[0].state, 'released');
  t.is(ack(p, A), a);
});

test('DECLINE quarantines the address for declineSeconds', (t) => {
  const clock = { t: 1_000_000 };
  const p = pool({ start: '10.0.0.10', end: '10.0.0.11', declineSeconds: 10 }, clock);
  const o = p.offer(A);
  if (!o.ok) return t.fail();
  t.is(p.decline(B, o.ip), undefined);
  t.like(p.decline(A, o.ip), { declined: o.ip });
  const next = p.offer(A);
  t.true(next.ok && next.ip !== o.ip);
  t.false(p.offer(B).ok);
  clock.t += 11_000;
  p.sweep();
  const later = p.offer(B);
  t.true(later.ok && later.ip === o.ip);
});

test('an offer honours the requested address (option 50) when it is free', (t) => {
  const p = pool();
  const o = p.offer(A, '10.0.0.12');
  t.true(o.ok && o.ip === '10.0.0.12');
  const taken = p.offer(B, '10.0.0.12');
  t.true(taken.ok && taken.ip !== '10.0.0.12');
});

test('restore replays records into the same state; records() round-trips', (t) => {
  const clock = { t: 1_000_000 };
  const p = pool({}, clock);
  ack(p, A);
  const b = ack(p, B);
  p.release(B, b);
  const c = p.offer(C);
  if (!c.ok) return t.fail();
  p.decline(C, c.ip);
  const q = pool({}, clock);
  t.is(q.restore(p.records()), 0);
  t.deepEqual(q.list(), p.list());
  t.is(ack(q, A), ack(p, A));
  t.is(q.restore([{ mac: C, ip: '172.16.0.1', state: 'bound', expires: 0 }]), 1, 'outside the subnet is dropped');
});

test('a later record for the same address evicts the earlier holder on replay', (t) => {
  const p = pool();
  const recs: LeaseRecord[] = [
    { mac: A, ip: '10.0.0.10', state: 'bound', expires: 5 },
    { mac: B, ip: '10.0.0.10', state: 'bound', expires: 2_000_000 },
  ];
  p.restore(recs);
  t.deepEqual(p.list().map((l) => l.mac), [B]);
});

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'zb-leases-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('lease file: appended records are on disk when append resolves and reload after restart', async (t) => {
  const dir = await tmp(t);
  const path = join(dir, 'sub', 'leases.json');
  const p = pool();
  const f = await LeaseFile.open(path, () => p.records());
  const o = p.offer(A);
  if (!o.ok) return t.fail();
  const r = p.request(A, o.ip, 'selecting');
  if (!r.ok) return t.fail();
  await f.append(r.record!);
  const journal = await readFile(`${path}.journal`, 'utf8');
  t.is(JSON.parse(journal.trim()).mac, A);
  // Simulated crash: no close(). A new process loads snapshot + journal.
  const loaded = await LeaseFile.load(path);
  t.is(loaded.skipped, 0);
  const q = pool();
  q.restore(loaded.records);
  t.deepEqual(q.list(), p.list());
  await f.close();
  await t.throwsAsync(access(`${path}.journal`), undefined, 'close folds the journal into the snapshot');
  const snap = JSON.parse(await readFile(path, 'utf8'));
  t.is(snap.version, 1);
  t.is(snap.records.length, 1);
});

test('lease file: many appends in one turn all land in the journal and resolve', async (t) => {
  const dir = await tmp(t);
  const path = join(dir, 'leases.json');
  const p = new LeasePool({ start: '10.1.0.1', end: '10.1.3.254', subnetMask: '255.255.252.0', leaseSeconds: 60 });
  const f = await LeaseFile.open(path, () => p.records());
  const waits: Promise<void>[] = [];
  for (let i = 0; i < 500; i++) {
    const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const o = p.offer(mac);
    if (!o.ok) return t.fail();
    const r = p.request(mac, o.ip, 'selecting');
    if (r.ok) waits.push(f.append(r.record!));
  }
  await Promise.all(waits);
  const lines = (await readFile(`${path}.journal`, 'utf8')).trim().split('\n');
  t.is(lines.length, 500);
  await f.close();
  const q = new LeasePool({ start: '10.1.0.1', end: '10.1.3.254', subnetMask: '255.255.252.0', leaseSeconds: 60 });
  q.restore((await LeaseFile.load(path)).records);
  t.is(q.list().length, 500);
});

test('lease file: a torn last journal line is skipped; a corrupt snapshot is an actionable error', async (t) => {
  const dir = await tmp(t);
  const path = join(dir, 'leases.json');
  await writeFile(`${path}.journal`, JSON.stringify({ mac: A, ip: '10.0.0.10', state: 'bound', expires: 9 }) + '\n{"mac":"52:54');
  const loaded = await LeaseFile.load(path);
  t.is(loaded.records.length, 1);
  t.is(loaded.skipped, 1);
  await writeFile(path, '{not json');
  await t.throwsAsync(LeaseFile.load(path), { instanceOf: LeaseFileError, message: /move it away/ });
});

test('lease file: a journal write cut short by a full disk does not swallow the next acknowledged record', async (t) => {
  // A tmpfs of 64 KiB in a private mount namespace, so the disk can be filled without touching the host's.
  const dir = await tmp(t);
  const { stdout } = await run('unshare', [
    '-m',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" --disable-warning=ExperimentalWarning "$3" "$1"',
    'sh',
    dir,
    process.execPath,
    fileURLToPath(new URL('../helpers/dhcp-lease-torn-write.ts', import.meta.url)),
  ]);
  const r = JSON.parse(stdout) as { failed: string; acked: string; macs: string[] };
  t.regex(r.failed, /^rejected: .*ENOSPC/, 'the oversized record must fail part-way (the premise of the test)');
  t.is(r.acked, 'stored');
  t.deepEqual(r.macs, ['52:54:00:00:00:01', '52:54:00:00:00:03']);
});

const ID1 = 'ff00000001';
const ID2 = 'ff00000002';

test('client-id keys the lease: two MACs with one client-id share it, one MAC with two client-ids gets two', (t) => {
  const p = pool();
  const shared = ack(p, { mac: A, clientId: ID1 });
  t.is(ack(p, { mac: B, clientId: ID1 }), shared, 'another NIC of the same client');
  const o = p.offer({ mac: B, clientId: ID1 });
  t.true(o.ok && o.ip === shared);
  const second = ack(p, { mac: A, clientId: ID2 });
  t.not(second, shared, 'the same NIC with another client-id is another client');
  t.not(ack(p, A), shared, 'and without a client-id, the MAC is a third client');
  const list = p.list().filter((l) => l.state === 'bound');
  t.is(list.length, 3);
  t.like(list.find((l) => l.ip === shared), { mac: B, clientId: ID1 }, 'the lease names the MAC that used it last');
  const rebooted = p.request({ mac: C, clientId: ID2 }, second, 'init-reboot');
  t.true(rebooted.ok, 'INIT-REBOOT of a known client-id from a new MAC is confirmed');
  if (rebooted.ok) t.deepEqual(rebooted.record, { mac: C, ip: second, state: 'bound', expires: 1_000_000 + 100_000, clientId: ID2 });
  t.true(p.release({ mac: B, clientId: ID1 }, shared) !== undefined, 'RELEASE by the client-id');
});

test('reservations stay by MAC whatever the client-id', (t) => {
  const p = pool({ reservations: [[A, '10.0.0.20']] });
  t.is(ack(p, { mac: A, clientId: ID1 }), '10.0.0.20');
  const stolen = p.request({ mac: B, clientId: ID1 }, '10.0.0.20', 'init-reboot');
  t.false(stolen.ok, 'the client-id does not carry the reservation to another MAC');
  if (!stolen.ok) t.regex(stolen.reason, /reserved for/);
});

test('a lease held by a MAC without client-id passes to that MAC once it sends one', (t) => {
  const p = pool();
  const old = ack(p, A);
  t.is(ack(p, { mac: A, clientId: ID1 }), old);
  t.is(p.list().length, 1);
  t.like(p.list()[0], { mac: A, clientId: ID1, ip: old });
  t.not(ack(p, { mac: A, clientId: ID2 }), old, 'a second client-id does not take it');
});

test('knows: a lease, an offer or a reservation is a record of the client; withdraw returns an offer', (t) => {
  const p = pool({ reservations: [[C, '10.0.0.20']] });
  t.false(p.knows(A));
  t.true(p.knows(C), 'reserved');
  const o = p.offer({ mac: A, clientId: ID1 });
  t.true(p.knows({ mac: B, clientId: ID1 }), 'an offer to the client-id');
  t.false(p.knows(A), 'not to the bare MAC');
  p.withdraw({ mac: A, clientId: ID1 });
  t.false(p.knows({ mac: A, clientId: ID1 }));
  t.deepEqual(p.list(), []);
  if (o.ok) t.true(p.request(B, o.ip, 'init-reboot').ok, 'the withdrawn address is free again');
});

test('INIT-REBOOT for another address than the client\'s lease is refused (RFC 2131 4.3.2)', (t) => {
  const p = pool();
  const a = ack(p, A);
  const other = a === '10.0.0.12' ? '10.0.0.11' : '10.0.0.12';
  for (const kind of ['init-reboot', 'renewing'] as const) {
    const r = p.request(A, other, kind);
    t.false(r.ok, kind);
    if (!r.ok) t.regex(r.reason, new RegExp(`lease is for ${a.replace(/\./g, '\\.')}`));
  }
});

test('lease file: records keep the client-id; journals written before it still load', async (t) => {
  const dir = await tmp(t);
  const path = join(dir, 'leases.json');
  const p = pool();
  const f = await LeaseFile.open(path, () => p.records());
  const o = p.offer({ mac: A, clientId: ID1 });
  if (!o.ok) return t.fail();
  const r = p.request({ mac: A, clientId: ID1 }, o.ip, 'selecting');
  if (!r.ok) return t.fail();
  await f.append(r.record!);
  t.is(JSON.parse((await readFile(`${path}.journal`, 'utf8')).trim()).clientId, ID1);
  const q = pool();
  q.restore((await LeaseFile.load(path)).records);
  t.is(q.offer({ mac: B, clientId: ID1 }).ok && q.list().find((l) => l.clientId === ID1)?.ip, o.ip, 'the client-id finds its lease after a restart');
  await f.close();

  // A journal and snapshot from before client-ids: records without the field.
  const legacy = join(dir, 'legacy.json');
  await writeFile(legacy, JSON.stringify({ version: 1, written: '2025-01-01T00:00:00.000Z', records: [{ mac: A, ip: '10.0.0.11', state: 'bound', expires: 2_000_000 }] }));
  await writeFile(`${legacy}.journal`, JSON.stringify({ mac: B, ip: '10.0.0.12', state: 'bound', expires: 2_000_000, hostname: 'b' }) + '\n');
  const loaded = await LeaseFile.load(legacy);
  t.is(loaded.skipped, 0);
  t.is(loaded.records.length, 2);
  const old = pool();
  t.is(old.restore(loaded.records), 0);
  t.is(ack(old, { mac: B, clientId: '01' + B.replace(/:/g, '') }), '10.0.0.12', 'the MAC keeps its address when it now sends a client-id');
  t.is(ack(old, A), '10.0.0.11');
  // A record whose client-id is not a string is unreadable, not trusted.
  await writeFile(`${legacy}.journal`, JSON.stringify({ mac: B, ip: '10.0.0.12', state: 'bound', expires: 2_000_000, clientId: 5 }) + '\n');
  t.is((await LeaseFile.load(legacy)).skipped, 1);
});
