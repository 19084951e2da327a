// Boots by stage from timeline events, with a clock the test moves: which
// DISCOVER starts a boot, that each stage counts once per boot with its
// latency, and that the machines followed stay those the timeline holds. Also:
// each server's metrics are its own (no global registry).
import test from 'ava';
import { BootTimeline } from '../../boot/timeline.ts';
import { ServerMetrics } from '../../boot/metrics/index.ts';
import { BOOT_WINDOW_MS } from '../../boot/metrics/boot-stages.ts';
import { parsePromText, sampleValue, type Sample } from '../../harness/prom-text.ts';

async function samples(m: ServerMetrics): Promise<Sample[]> {
  return parsePromText((await m.scrape()).text);
}

function setup() {
  let now = 1_000_000;
  const timeline = new BootTimeline({}, () => now);
  const metrics = new ServerMetrics({ timeline, now: () => now });
  return { timeline, metrics, advance: (ms: number) => (now += ms) };
}

const MAC = '52:54:00:00:00:01';

test('a boot: iPXE\'s second DISCOVER is the same boot, each stage counts once with its seconds since the first DISCOVER', async (t) => {
  const { timeline, metrics, advance } = setup();
  t.teardown(() => metrics.close());
  timeline.record(MAC, 'dhcp.discover');
  advance(500);
  timeline.record(MAC, 'dhcp.offer');
  advance(1500);
  timeline.record(MAC, 'tftp.done', { bytes: 1000, ms: 20 });
  timeline.record(MAC, 'dhcp.discover');
  timeline.record(MAC, 'dhcp.offer');
  advance(1000);
  timeline.record(MAC, 'http.script');
  timeline.record(MAC, 'http.kernel', { bytes: 10 }, 'client closed the connection before the end');
  advance(2000);
  timeline.record(MAC, 'http.kernel', { bytes: 10 });
  const s = await samples(metrics);
  t.is(sampleValue(s, 'zeroboot_boots_started_total'), 1);
  t.is(sampleValue(s, 'zeroboot_boot_stage_reached_total', { stage: 'dhcp' }), 1);
  t.is(sampleValue(s, 'zeroboot_boot_stage_seconds_sum', { stage: 'dhcp' }), 0.5);
  t.is(sampleValue(s, 'zeroboot_boot_stage_seconds_sum', { stage: 'loader' }), 2);
  t.is(sampleValue(s, 'zeroboot_boot_stage_seconds_sum', { stage: 'config' }), 3);
  t.is(sampleValue(s, 'zeroboot_boot_stage_seconds_sum', { stage: 'kernel' }), 5, 'a cut download is not the stage');
  t.is(sampleValue(s, 'zeroboot_boot_stage_seconds_bucket', { stage: 'kernel', le: '5' }), 1);
  t.is(sampleValue(s, 'zeroboot_boot_stage_seconds_bucket', { stage: 'kernel', le: '2.5' }), 0);
  t.is(sampleValue(s, 'zeroboot_machines_by_stage', { stage: 'kernel' }), 1);
  t.is(sampleValue(s, 'zeroboot_tftp_bytes_total'), 1000);
});

test('a DISCOVER after the kernel, or after the boot window, starts a new boot', async (t) => {
  const { timeline, metrics, advance } = setup();
  t.teardown(() => metrics.close());
  timeline.record(MAC, 'dhcp.discover');
  timeline.record(MAC, 'http.kernel');
  timeline.record(MAC, 'dhcp.discover');
  t.is(sampleValue(await samples(metrics), 'zeroboot_boots_started_total'), 2);
  timeline.record(MAC, 'dhcp.offer');
  advance(BOOT_WINDOW_MS + 1);
  timeline.record(MAC, 'dhcp.discover');
  const s = await samples(metrics);
  t.is(sampleValue(s, 'zeroboot_boots_started_total'), 3);
  t.is(sampleValue(s, 'zeroboot_machines_by_stage', { stage: 'none' }), 1);
});

test('the machines followed are those the timeline holds: each machine it drops is forgotten', async (t) => {
  const timeline = new BootTimeline({ machines: 10 });
  const metrics = new ServerMetrics({ timeline });
  t.teardown(() => metrics.close());
  const mac = (i: number) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  for (let i = 0; i < 1000; i++) timeline.record(mac(i), 'dhcp.discover');
  const s = await samples(metrics);
  t.is(sampleValue(s, 'zeroboot_boots_started_total'), 1000);
  t.is(sampleValue(s, 'zeroboot_machines_by_stage', { stage: 'none' }), 10);
});

test('two servers in one process count apart, and a closed one stops counting', async (t) => {
  const a = setup();
  const b = setup();
  t.teardown(() => b.metrics.close());
  a.timeline.record(MAC, 'dhcp.discover');
  a.timeline.record(MAC, 'dhcp.discover');
  t.is(sampleValue(await samples(a.metrics), 'zeroboot_dhcp_requests_total', { type: 'discover' }), 2);
  t.is(sampleValue(await samples(b.metrics), 'zeroboot_dhcp_requests_total', { type: 'discover' }), 0);
  a.metrics.close();
  a.timeline.record(MAC, 'dhcp.discover');
  t.is(sampleValue(await samples(a.metrics), 'zeroboot_dhcp_requests_total', { type: 'discover' }), 2);
});

test('ignored packets: those of known MACs (events) and of unknown ones (counted by the timeline) add up under one reason', async (t) => {
  const { timeline, metrics } = setup();
  t.teardown(() => metrics.close());
  timeline.record(MAC, 'dhcp.discover');
  timeline.recordIgnored(MAC, 'dhcp.ignored', 'address pool 10.0.0.1-10.0.0.9 is exhausted');
  timeline.recordIgnored('02:00:00:00:00:09', 'dhcp.ignored', 'address pool 10.0.0.1-10.0.0.9 is exhausted');
  timeline.recordIgnored('unknown', 'dhcp.ignored', 'malformed packet: 8 bytes, shorter than the 240-byte header');
  const s = await samples(metrics);
  t.is(sampleValue(s, 'zeroboot_dhcp_ignored_total', { reason: 'pool_full' }), 2);
  t.is(sampleValue(s, 'zeroboot_dhcp_ignored_total', { reason: 'malformed' }), 1);
});
