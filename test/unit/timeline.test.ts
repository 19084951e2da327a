import test from 'ava';
import { BootTimeline, normalizeMac } from '../../boot/timeline.ts';

test('events are kept per MAC in order, whatever the MAC spelling', (t) => {
  const tl = new BootTimeline();
  tl.record('52-54-00-AA-BB-CC', 'dhcp.discover');
  tl.record('52:54:00:aa:bb:cc', 'dhcp.offer', { ip: '10.0.0.5' });
  tl.record('52:54:00:aa:bb:cd', 'dhcp.ignored', undefined, 'not a PXE client');
  const ev = tl.events('52:54:00:AA:BB:CC');
  t.deepEqual(ev.map((e) => e.kind), ['dhcp.discover', 'dhcp.offer']);
  t.is(ev[1].detail?.ip, '10.0.0.5');
  t.is(tl.events('52:54:00:aa:bb:cd')[0].reason, 'not a PXE client');
});

test('limits bound memory: old events and least recent machines are dropped', (t) => {
  const tl = new BootTimeline({ eventsPerMachine: 3, machines: 2 });
  for (let i = 0; i < 5; i++) tl.record('02:00:00:00:00:01', 'tftp.request', { i });
  t.deepEqual(tl.events('02:00:00:00:00:01').map((e) => e.detail?.i), [2, 3, 4]);
  tl.record('02:00:00:00:00:02', 'dhcp.discover');
  tl.record('02:00:00:00:00:01', 'dhcp.discover');
  tl.record('02:00:00:00:00:03', 'dhcp.discover');
  t.deepEqual(tl.machines().map((m) => m.mac).sort(), ['02:00:00:00:00:01', '02:00:00:00:00:03']);
});

test('subscribers see each event once until they unsubscribe', (t) => {
  const tl = new BootTimeline();
  const seen: string[] = [];
  const off = tl.subscribe((e) => seen.push(e.kind));
  tl.record('02:00:00:00:00:01', 'dhcp.discover');
  off();
  tl.record('02:00:00:00:00:01', 'dhcp.offer');
  t.deepEqual(seen, ['dhcp.discover']);
});

test('normalizeMac accepts the usual spellings and refuses the rest', (t) => {
  t.is(normalizeMac('AA-BB-CC-DD-EE-FF'), 'aa:bb:cc:dd:ee:ff');
  t.is(normalizeMac('aabb.ccdd.eeff'), 'aa:bb:cc:dd:ee:ff');
  t.is(normalizeMac('aa:bb:cc:dd:ee'), undefined);
  t.is(normalizeMac('zz:bb:cc:dd:ee:ff'), undefined);
});
