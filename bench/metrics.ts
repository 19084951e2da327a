// What /metrics costs the DHCP path: the four timeline events of a lease
// (DISCOVER, OFFER, REQUEST, ACK), recorded for 50,000 distinct MACs, with
// and without a ServerMetrics subscribed, side by side in alternating
// rounds; CPU time per lease, and the CPU time of a scrape at the end.
//   node bench/metrics.ts [--leases N] [--rounds R]
import { BootTimeline } from '../boot/timeline.ts';
import { ServerMetrics } from '../boot/metrics/index.ts';
import { parseBenchArgs } from '../harness/bench-args.ts';

const { values } = parseBenchArgs('bench/metrics.ts', { options: { leases: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' } } });
const leases = Number(values.leases);
const rounds = Number(values.rounds);
if (!(leases > 0) || !(rounds > 0)) {
  console.error('bench/metrics.ts: --leases and --rounds take positive numbers');
  process.exit(2);
}
const MACS = 50_000;
const macs = Array.from({ length: MACS }, (_, i) => `02:00:00:${[i >> 16, (i >> 8) & 255, i & 255].map((x) => x.toString(16).padStart(2, '0')).join(':')}`);

function run(withMetrics: boolean): { usPerLease: number; metrics?: ServerMetrics } {
  const timeline = new BootTimeline();
  const metrics = withMetrics ? new ServerMetrics({ timeline }) : undefined;
  const start = process.cpuUsage();
  for (let i = 0; i < leases; i++) {
    const mac = macs[i % MACS];
    timeline.record(mac, 'dhcp.discover', { iface: 'br0' });
    timeline.record(mac, 'dhcp.offer', { to: '255.255.255.255:68', iface: 'br0', ip: '10.0.0.1' });
    timeline.record(mac, 'dhcp.request', { iface: 'br0' });
    timeline.record(mac, 'dhcp.ack', { to: '255.255.255.255:68', iface: 'br0', ip: '10.0.0.1' });
  }
  const used = process.cpuUsage(start);
  return { usPerLease: (used.user + used.system) / leases, metrics };
}

const results: Record<string, number[]> = { without: [], with: [] };
let last: ServerMetrics | undefined;
for (let r = 0; r < rounds; r++) {
  results.without.push(run(false).usPerLease);
  const w = run(true);
  results.with.push(w.usPerLease);
  last?.close();
  last = w.metrics;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// The first scrapes compile prom-client's formatting; the next 20 are what a scrape job sees every interval.
for (let i = 0; i < 5; i++) await last!.scrape();
const c0 = process.cpuUsage();
let text = '';
for (let i = 0; i < 20; i++) text = (await last!.scrape()).text;
const c = process.cpuUsage(c0);
const scrapeMs = (c.user + c.system) / 1000 / 20;
last!.close();
console.log(`timeline only:    ${median(results.without).toFixed(2)} us CPU per lease (4 events), rounds ${results.without.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`with /metrics:    ${median(results.with).toFixed(2)} us CPU per lease, rounds ${results.with.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`ratio:            ${(median(results.with) / median(results.without)).toFixed(3)}`);
console.log(`one scrape:       ${scrapeMs.toFixed(2)} ms CPU, ${text.length} bytes, ${text.split('\n').filter((l) => l && !l.startsWith('#')).length} samples; ${MACS} MACs cycling through a timeline of 10,000 machines`);
