// The DHCP thread's batches to the main thread: in order, with the lease
// listing when leases changed, and bounded while the main thread does not
// take them.
import test from 'ava';
import { EventBatcher } from '../../boot/dhcp/thread-batch.ts';
import type { Entry, FromWorker } from '../../boot/dhcp/thread-messages.ts';
import type { LeaseInfo } from '../../boot/dhcp/leases.ts';
import { BootTimeline } from '../../boot/timeline.ts';

type Batch = Extract<FromWorker, { type: 'batch' }>;
const entries = (b: Batch | undefined) => JSON.parse(b!.entries) as Entry[];
const MAC = '52:54:00:00:00:01';
const LEASE = { mac: MAC, ip: '10.0.0.5', state: 'bound' } as LeaseInfo;

test('entries keep their order, and an ACK brings the lease listing in the same batch', (t) => {
  const sent: Batch[] = [];
  const b = new EventBatcher((m) => sent.push(m as Batch), () => [LEASE]);
  b.record(MAC, 'dhcp.discover');
  b.labels(MAC, { uuid: 'u' });
  b.logger().warn('w', { error: new Error('boom'), n: 1 });
  b.record(MAC, 'dhcp.ack', { ip: '10.0.0.5' });
  b.flush();
  t.is(sent.length, 1);
  t.deepEqual(entries(sent[0]).map((e) => e[0]), ['event', 'labels', 'log', 'event']);
  t.deepEqual(entries(sent[0])[2], ['log', 'warn', 'w', { error: 'boom', n: 1 }]);
  t.deepEqual(sent[0]!.leases, [LEASE]);
  b.acked();
  b.record(MAC, 'dhcp.request');
  b.flush();
  t.is(sent[1]!.leases, undefined, 'no listing when no lease changed');
});

test('while the main thread takes nothing, at most 4 batches are in flight and at most 50,000 entries are kept; the rest is counted', (t) => {
  const sent: Batch[] = [];
  const b = new EventBatcher((m) => sent.push(m as Batch), () => []);
  for (let i = 0; i < 4; i++) {
    b.recordIgnored(MAC, 'dhcp.ignored', 'x');
    b.flush();
  }
  t.is(sent.length, 4);
  for (let i = 0; i < 60_000; i++) b.recordIgnored(MAC, 'dhcp.ignored', 'x');
  b.flush();
  t.is(sent.length, 4, 'nothing more is sent until a batch is acknowledged');
  b.acked();
  b.flush();
  t.is(sent.length, 5);
  t.is(entries(sent[4]).length, 50_000);
  t.is(sent[4]!.dropped, 10_000);
});

test('an event keeps the time the DHCP thread saw it, not the time the main thread replays it', (t) => {
  const sent: Batch[] = [];
  const b = new EventBatcher((m) => sent.push(m as Batch), () => []);
  const before = Date.now();
  b.record(MAC, 'dhcp.discover');
  b.recordIgnored(MAC, 'dhcp.ignored', 'wrong-server');
  b.flush();
  const [ev, ig] = entries(sent[0]);
  t.true(ev![5]! >= before && ev![5]! <= Date.now());
  t.true(ig![5]! >= before && ig![5]! <= Date.now());
  // The main thread's timeline, replaying 5 s later, stamps the event with the thread's time.
  const timeline = new BootTimeline({}, () => before + 5000);
  const e = timeline.record(MAC, 'dhcp.discover', undefined, undefined, ev![5] as number);
  t.is(e.time, new Date(ev![5] as number).toISOString());
  t.is(timeline.record(MAC, 'dhcp.offer').time, new Date(before + 5000).toISOString());
});
