// The live status block of `zeroboot serve` on a terminal: its lines from the
// timeline's events, cut to the terminal, most recent machine first.
import test from 'ava';
import { age, renderStatus, StatusRows } from '../../cli/serve-status.ts';
import { BootTimeline } from '../../boot/timeline.ts';

test('ages in the largest whole unit', (t) => {
  t.deepEqual([age(999), age(59_000), age(61_000), age(7_200_000), age(3 * 86_400_000), age(-5)], ['0s', '59s', '1m', '2h', '3d', '0s']);
});

test('rows follow the events: the address DHCP gave, the stage with a refusal reason, drops', (t) => {
  const timeline = new BootTimeline();
  const rows = new StatusRows((mac) => (mac === '52:54:00:00:00:01' ? 'node-01' : undefined));
  timeline.subscribe((e) => rows.observe(e));
  timeline.record('52:54:00:00:00:01', 'dhcp.ack', { ip: '10.77.0.100' });
  timeline.record('52:54:00:00:00:01', 'http.script', { profile: 'zos' });
  timeline.record('52:54:00:00:00:02', 'tftp.error', { client: '10.77.0.101', file: 'x' }, 'not found');
  const [a, b] = rows.list();
  t.like(a, { mac: '52:54:00:00:00:01', hostname: 'node-01', ip: '10.77.0.100', stage: 'http.script' });
  t.like(b, { mac: '52:54:00:00:00:02', hostname: undefined, ip: '10.77.0.101', stage: 'tftp.error: not found' });
  rows.drop('52:54:00:00:00:02');
  t.is(rows.list().length, 1);
});

const row = (i: number, at: number) => ({ mac: `52:54:00:00:00:${String(i).padStart(2, '0')}`, stage: 'dhcp.ack', ip: `10.0.0.${i}`, at });

test('most recent first, cut to the height with a count of the rest, and to the width', (t) => {
  const now = 100_000;
  const rows = [row(1, now - 50_000), row(2, now - 1_000), row(3, now - 3_000), row(4, now - 70_000)];
  const lines = renderStatus(rows, now, 200, 4);
  t.is(lines.length, 4);
  t.regex(lines[0], /^MAC +HOSTNAME +IP +AGE +STAGE +\(4 machines\)$/);
  t.regex(lines[1], /^52:54:00:00:00:02 +- +10\.0\.0\.2 +1s +dhcp\.ack$/);
  t.regex(lines[2], /^52:54:00:00:00:03 +- +10\.0\.0\.3 +3s +dhcp\.ack$/);
  t.is(lines[3], '... and 2 more (GET /api/machines on the management port lists all)');
  t.true(renderStatus(rows, now, 30, 10).every((l) => l.length <= 29));
  t.is(renderStatus(rows, now, 200, 10).length, 5);
});
