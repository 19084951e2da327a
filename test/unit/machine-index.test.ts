// The machine index behind /api/machines: rebuilds touch only what changed,
// leases are listed a slice per turn, and the sorted MAC list follows
// machines joining and leaving.
import test from 'ava';
import { BootTimeline } from '../../boot/timeline.ts';
import { MachineIndex, resorted } from '../../boot/http/machine-index.ts';
import type { Lease } from '../../boot/http/machine-index.ts';

const macOf = (i: number) => `52:54:00:${[i >> 16, (i >> 8) & 255, i & 255].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;

test('a rebuild updates only the machines with news, not all 10,000', async (t) => {
  const tl = new BootTimeline();
  for (let i = 0; i < 10_000; i++) tl.record(macOf(i), 'dhcp.discover');
  let looked = 0;
  const index = new MachineIndex({ timeline: tl, labelsFor: () => (looked++, undefined), minIntervalMs: 0 });
  try {
    t.is((await index.snapshot()).macs.length, 10_000);
    t.is(looked, 10_000);
    tl.record(macOf(5), 'dhcp.offer');
    tl.record(macOf(5), 'dhcp.request');
    tl.record(macOf(9), 'dhcp.offer');
    const snap = await index.snapshot();
    t.is(looked, 10_002, 'two machines had news');
    t.is(snap.rows.get(macOf(5))?.summary.stage, 'dhcp.request');
    t.is(snap.rows.get(macOf(9))?.summary.events, 2);
  } finally {
    index.close();
  }
});

test('machines joining and leaving (dropped by the timeline\'s bounds, lease gone) keep the list sorted', async (t) => {
  const tl = new BootTimeline({ machines: 1000 });
  let leases: Lease[] = [{ mac: '00-00-00-00-00-01', ip: '10.0.0.1' }];
  const index = new MachineIndex({ timeline: tl, leases: () => leases, labelsFor: () => undefined, minIntervalMs: 0, leaseIntervalMs: 0 });
  try {
    for (let i = 999; i >= 0; i--) tl.record(macOf(i * 2), 'dhcp.discover');
    let snap = await index.snapshot();
    t.deepEqual(snap.macs, ['00:00:00:00:00:01', ...Array.from({ length: 1000 }, (_, i) => macOf(i * 2))]);
    // A few join (spliced in) and push the least recent out.
    tl.record(macOf(7), 'dhcp.discover');
    tl.record(macOf(3), 'dhcp.discover');
    snap = await index.snapshot();
    t.is(snap.macs.length, 1001);
    t.deepEqual(snap.macs.slice(1, 7), [0, 2, 3, 4, 6, 7].map(macOf));
    t.false(snap.macs.includes(macOf(1998)) || snap.macs.includes(macOf(1996)), 'dropped machines leave the list');
    // Many join at once (merged), and the lease goes after a lease event.
    for (let i = 0; i < 500; i++) tl.record(macOf(i * 2 + 1), 'dhcp.discover');
    leases = [];
    tl.record(macOf(1), 'dhcp.release');
    snap = await index.snapshot();
    t.deepEqual(snap.macs, [...snap.macs].sort());
    t.is(snap.macs.length, 1000);
    t.false(snap.macs.includes('00:00:00:00:00:01'));
    t.deepEqual([...snap.rows.keys()].sort(), snap.macs);
  } finally {
    index.close();
  }
});

test('the leases are listed a slice per event-loop turn', async (t) => {
  const tl = new BootTimeline();
  let inTurn = 0;
  let most = 0;
  let turns = 0;
  function* leases(): Generator<Lease> {
    for (let i = 0; i < 10_000; i++) {
      most = Math.max(most, ++inTurn);
      yield { mac: macOf(i), ip: '10.0.0.1', hostname: `node-${i}` };
    }
  }
  let listing = true;
  const spin = () => {
    inTurn = 0;
    turns++;
    if (listing) setImmediate(spin);
  };
  setImmediate(spin);
  const index = new MachineIndex({ timeline: tl, leases, labelsFor: () => undefined, slice: 256 });
  try {
    const lease = await index.lease(macOf(42));
    listing = false;
    t.like(lease, { ip: '10.0.0.1', hostname: 'node-42' });
    t.true(most <= 256, `${most} leases were listed in one turn`);
    t.true(turns >= 35, `the event loop ran ${turns} times during the listing`);
    t.is((await index.snapshot()).macs.length, 10_000, 'leased machines without events are listed');
  } finally {
    index.close();
  }
});

test('resorted splices a few MACs and merges many, like a full sort', (t) => {
  const base = ['a', 'c', 'e', 'g'];
  const present = (gone: Set<string>) => (m: string) => !gone.has(m);
  t.deepEqual(resorted([...base], ['d', 'b'], new Set(['e']), present(new Set(['e']))), ['a', 'b', 'c', 'd', 'g']);
  const many = Array.from({ length: 100 }, (_, i) => `m${String(i).padStart(3, '0')}`);
  const gone = new Set(['c', 'm010']);
  t.deepEqual(resorted([...base, 'm010'].sort(), [...many].reverse(), gone, present(gone)), [...base, ...many].filter((m) => !gone.has(m)).sort());
  t.deepEqual(resorted(['a', 'b'], ['b'], new Set(), () => true), ['a', 'b'], 'a MAC already listed is not listed twice');
});

test('without a lease, a row shows the address the machine last asked from, and keeps it through events naming none', async (t) => {
  const tl = new BootTimeline();
  const index = new MachineIndex({ timeline: tl, labelsFor: () => undefined, minIntervalMs: 0 });
  try {
    const mac = macOf(1);
    tl.record(mac, 'http.script', { profile: 'zos', client: '10.0.0.7' });
    t.is((await index.snapshot()).rows.get(mac)?.summary.ip, '10.0.0.7');
    tl.record(mac, 'grub.config', { profile: 'zos' });
    t.is((await index.snapshot()).rows.get(mac)?.summary.ip, '10.0.0.7');
    tl.record(mac, 'dhcp.ack', { ip: '10.0.0.9' });
    t.is((await index.snapshot()).rows.get(mac)?.summary.ip, '10.0.0.9');
  } finally {
    index.close();
  }
});
