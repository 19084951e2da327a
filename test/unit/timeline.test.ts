import test from 'ava';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BootTimeline, clean } from '../../boot/timeline.ts';

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

test('latest gives a machine\'s count and last event; drop subscribers hear of every machine the bounds drop', (t) => {
  const tl = new BootTimeline({ machines: 2, eventsPerMachine: 2 });
  const dropped: string[] = [];
  const off = tl.subscribeDrops((mac) => dropped.push(mac));
  for (let i = 0; i < 3; i++) tl.record('02:00:00:00:00:01', 'tftp.request', { i });
  t.like(tl.latest('02-00-00-00-00-01'), { events: 2, last: { kind: 'tftp.request', detail: { i: 2 } } });
  t.is(tl.latest('02:00:00:00:00:09'), undefined);
  tl.record('02:00:00:00:00:02', 'dhcp.discover');
  tl.record('02:00:00:00:00:03', 'dhcp.discover');
  t.deepEqual(dropped, ['02:00:00:00:00:01'], 'dropping events is not dropping the machine');
  off();
  tl.record('02:00:00:00:00:04', 'dhcp.discover');
  t.deepEqual(dropped, ['02:00:00:00:00:01']);
});

const macOf = (i: number) => `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

test('the byte bound drops the least recently active machines first, and holds', (t) => {
  const limit = 200_000;
  const tl = new BootTimeline({ bytes: limit });
  for (let i = 0; i < 2000; i++) tl.record(macOf(i), 'dhcp.discover', { vendorClass: 'PXEClient:Arch:00000:UNDI:002001'.repeat(4), xid: i });
  t.true(tl.bytes() <= limit, `${tl.bytes()} estimated bytes over the ${limit} bound`);
  const kept = tl.machines().map((m) => m.mac);
  t.true(kept.length > 100 && kept.length < 2000, `${kept.length} machines kept`);
  t.true(kept.includes(macOf(1999)), 'the newest machine stays');
  t.deepEqual(tl.events(macOf(0)), [], 'the oldest machine went first');
});

test('one machine over the byte bound keeps its newest events', (t) => {
  const tl = new BootTimeline({ bytes: 20_000, eventsPerMachine: 10_000 });
  for (let i = 0; i < 1000; i++) tl.record('02:00:00:00:00:01', 'tftp.request', { file: 'x'.repeat(200), i });
  const events = tl.events('02:00:00:00:00:01');
  t.true(tl.bytes() <= 20_000);
  t.true(events.length > 10 && events.length < 1000, `${events.length} events kept`);
  t.is(events[events.length - 1].detail?.i, 999);
});

test('the estimate tracks real memory: 10,000 machines flooding stay within the bound', (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const limit = 8 * 1024 * 1024;
  const tl = new BootTimeline({ bytes: limit });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let round = 0; round < 15; round++) {
    for (let i = 0; i < 10_000; i++) {
      tl.record(macOf(i), 'dhcp.discover', { iface: 'br0', xid: (round * 7919 + i).toString(16), vendorClass: `PXEClient:Arch:0000${round % 10}:UNDI:002001`, uuid: `${i}-${round}`.padEnd(36, 'x') });
    }
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  // 150,000 events of ~350 bytes each would be ~50 MB without the bound.
  t.true(grown < 2 * limit, `heap grew ${(grown / 1e6).toFixed(1)} MB for an ${limit / 1e6} MB bound`);
});

test('long client strings are cut, with a note of how much', (t) => {
  const tl = new BootTimeline({ stringChars: 100 });
  const e = tl.record('02:00:00:00:00:01', 'http.error', { path: 'a'.repeat(10_000), size: 5 }, 'b'.repeat(5000));
  t.is(e.detail?.path, `${'a'.repeat(100)}…(9900 more characters)`);
  t.is(e.detail?.size, 5);
  t.is(e.reason, `${'b'.repeat(100)}…(4900 more characters)`);
});

test('control characters from clients are escaped in details, reasons and non-MAC keys', (t) => {
  const tl = new BootTimeline();
  const e = tl.record('02:00:00:00:00:01', 'tftp.error', { file: 'a\nerror FAKE-INJECTED-LINE\r\u001b[31m\u0085\u2028' }, 'bad\tmode\u0000');
  t.is(e.detail?.file, 'a\\x0aerror FAKE-INJECTED-LINE\\x0d\\x1b[31m\\x85\\u2028');
  t.is(e.reason, 'bad\\x09mode\\x00');
  t.is(tl.record('not-a-mac\n', 'http.error').mac, 'not-a-mac\\x0a');
  t.is(clean('plain text', 100), 'plain text');
});

test('ignored packets from MACs without a timeline are counted per reason, not recorded', (t) => {
  let now = Date.parse('2025-01-01T00:00:00Z');
  const tl = new BootTimeline({ ignoredReasons: 2 }, () => now);
  const seen: string[] = [];
  tl.subscribe((e) => seen.push(e.kind));
  for (let i = 0; i < 1000; i++) {
    now += 1000;
    tl.recordIgnored(macOf(i), 'dhcp.ignored', 'malformed packet: bad cookie', { bytes: i });
  }
  tl.recordIgnored(macOf(5), 'dhcp.ignored', 'no DHCP message type');
  tl.recordIgnored(macOf(6), 'dhcp.ignored', 'a third reason');
  tl.recordIgnored(macOf(7), 'dhcp.ignored', 'a fourth reason');
  t.deepEqual(tl.machines(), []);
  t.deepEqual(seen, [], 'listeners see no event for a counted packet');
  const counts = tl.ignored();
  t.is(counts.length, 3);
  t.like(counts[0], { reason: 'malformed packet: bad cookie', count: 1000, first: '2025-01-01T00:00:01.000Z', last: '2025-01-01T00:16:40.000Z', lastMac: macOf(999), lastDetail: { bytes: 999 } });
  t.like(counts[2], { count: 1 });
  t.like(counts.find((c) => c.reason.startsWith('other reasons')), { count: 2, lastMac: macOf(7) });

  tl.record(macOf(1), 'dhcp.discover');
  tl.recordIgnored(macOf(1), 'dhcp.ignored', 'malformed packet: bad cookie');
  t.deepEqual(tl.events(macOf(1)).map((e) => e.reason), [undefined, 'malformed packet: bad cookie'], 'a MAC with a timeline gets the event');
  t.is(tl.ignored()[0].count, 1000);
});
