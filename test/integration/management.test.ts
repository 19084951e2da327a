// The management listener against curl on loopback: the JSON API with and
// without a bearer token, pages of the machine list (summary and full,
// bounded), one machine's timeline, and a list built in slices that let the
// event loop run.
import test from 'ava';
import { execFile } from 'node:child_process';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import type { Profile, Group } from '../../boot/selection.ts';
import { MachineLabels } from '../../boot/machine-labels.ts';
import { silentLogger } from '../../boot/log.ts';
import { startManagementServer, MachineIndex, PAGE_MAX_BYTES } from '../../boot/http/index.ts';
import type { ManagementServer } from '../../boot/http/index.ts';
import type { ApiContext, Lease } from '../../boot/http/api.ts';

const profiles: Profile[] = [
  { name: 'zos-prod', kernel: 'images/zos/vmlinuz', initrd: [], args: { runmode: 'prod' } },
  { name: 'zos-qa', kernel: 'images/qa/vmlinuz', initrd: [], args: { runmode: 'qa' } },
];
const groups: Group[] = [
  { name: 'rack-a', profile: 'zos-prod', selector: { hostname: 'node-a' }, args: { farmer_id: 101 } },
  { name: 'qa-lab', profile: 'zos-qa', selector: { serial: 'SN-QA' }, args: { farmer_id: 202 } },
];
const TOKEN = 'test-token-0123456789abcdef';
const macOf = (i: number) => `52:54:00:${[i >> 16, (i >> 8) & 255, i & 255].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;

function context(timeline: BootTimeline, labels: MachineLabels, leases: () => Lease[] = () => []): ApiContext {
  const labelsFor = (m: string) => labels.get(m);
  return { timeline, selector: createSelector(profiles, groups, []), index: new MachineIndex({ timeline, leases, labelsFor }), labelsFor, startedAt: new Date() };
}

function curl(args: string[]): Promise<{ status: number; body: string; headers: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--max-time', '30', '-w', '\n%{http_code}', ...args], { maxBuffer: 64 << 20 }, (err, out) => {
      if (err) return reject(err);
      const nl = out.lastIndexOf('\n');
      const end = out.indexOf('\r\n\r\n');
      resolve({ status: Number(out.slice(nl + 1)), body: out.slice(end + 4, nl), headers: out.slice(0, end) });
    });
  });
}

const timeline = new BootTimeline();
const labels = new MachineLabels();
let open: ManagementServer;
let guarded: ManagementServer;

test.before(async () => {
  labels.note('52:54:00:00:00:0a', { mac: '52:54:00:00:00:0a', hostname: 'node-a' });
  timeline.record('52:54:00:00:00:0a', 'http.script', { profile: 'zos-prod' });
  timeline.record('52:54:00:00:00:0b', 'dhcp.ignored', {}, 'no pool for this network');
  const ctx = context(timeline, labels, () => [{ mac: '52-54-00-00-00-99', ip: '10.77.0.99', hostname: 'leased-only' }]);
  open = await startManagementServer({ api: ctx, host: '127.0.0.1', port: 0, log: silentLogger });
  guarded = await startManagementServer({ api: ctx, host: '127.0.0.1', port: 0, token: TOKEN, log: silentLogger });
});

test.after.always(async () => {
  await open?.close();
  await guarded?.close();
});

test('with a token: none or a wrong one is a 401, the right one a 200; health needs none', async (t) => {
  const none = await curl([`${guarded.url}/machines`]);
  t.is(none.status, 401);
  t.regex(none.headers, /www-authenticate: Bearer/i);
  t.regex(JSON.parse(none.body).error, /Authorization: Bearer/);
  const wrong = await curl(['-H', 'Authorization: Bearer not-the-token', `${guarded.url}/machines/52:54:00:00:00:0a`]);
  t.is(wrong.status, 401);
  t.regex(JSON.parse(wrong.body).error, /wrong/);
  t.is((await curl(['-H', `Authorization: Bearer ${TOKEN}x`, `${guarded.url}/machines`])).status, 401);
  const right = await curl(['-H', `Authorization: Bearer ${TOKEN}`, `${guarded.url}/machines`]);
  t.is(right.status, 200);
  t.is(JSON.parse(right.body).total, 3);
  t.is((await curl([`${guarded.url}/health`])).status, 200);
  t.is((await curl([`${open.url}/machines`])).status, 200, 'no token configured, none asked');
});

test('the summary list: MAC order, last stage and time, lease address and hostname, event count', async (t) => {
  const r = await curl([`${open.url}/machines`]);
  t.is(r.status, 200);
  const page = JSON.parse(r.body);
  t.is(page.next, null);
  t.deepEqual(page.machines.map((m: { mac: string }) => m.mac), ['52:54:00:00:00:0a', '52:54:00:00:00:0b', '52:54:00:00:00:99']);
  const [a, b, leased] = page.machines;
  t.like(a, { stage: 'http.script', hostname: 'node-a', events: 1 });
  t.regex(a.lastSeen, /^\d{4}-\d\d-\d\dT/);
  t.like(b, { stage: 'dhcp.ignored', reason: 'no pool for this network' });
  t.deepEqual(leased, { mac: '52:54:00:00:00:99', ip: '10.77.0.99', hostname: 'leased-only', events: 0 });
  t.is(a.selection, undefined, 'the summary leaves the selection to the full form');
});

test('the full form and one machine: selection, labels, lease, timeline', async (t) => {
  const full = JSON.parse((await curl([`${open.url}/machines?view=full`])).body);
  const a = full.machines[0];
  t.like(a.selection, { profile: 'zos-prod', group: 'rack-a' });
  t.is(a.labels.hostname, 'node-a');
  t.is(a.last.kind, 'http.script');
  t.like(full.machines[2], { events: 0, last: null, lease: { ip: '10.77.0.99' } });
  t.regex(full.machines[1].selection.error, /no group or machine entry/);
  const one = JSON.parse((await curl([`${open.url}/machines/52-54-00-00-00-0a`])).body);
  t.is(one.timeline.length, 1);
  t.like(one.selection, { profile: 'zos-prod', group: 'rack-a' });
});

test('API errors are JSON objects with an error field', async (t) => {
  for (const [p, status] of [
    ['/nope', 404], ['/machines/not-a-mac', 400], ['/machines/52:54:00:12:34:56', 404],
    ['/machines?limit=0', 400], ['/machines?limit=1001', 400], ['/machines?limit=x', 400],
    ['/machines?view=everything', 400], ['/machines?cursor=nope', 400],
  ] as const) {
    const r = await curl([`${open.url}${p}`]);
    t.is(r.status, status, p);
    t.is(typeof JSON.parse(r.body).error, 'string', p);
  }
  t.is((await curl(['-X', 'POST', `${open.url}/machines`])).status, 405);
  t.is((await curl([open.url.replace(/\/api$/, '/nothing-here')])).status, 404);
  t.is((await curl([open.url.replace(/\/api$/, '/')])).status, 302, 'the root leads to the dashboard');
});

test('2,500 machines page by page: each once, in order; a new event shows at once', async (t) => {
  const tl = new BootTimeline();
  for (let i = 0; i < 2500; i++) tl.record(macOf(i), 'dhcp.discover', { iface: 'br0' });
  const s = await startManagementServer({ api: context(tl, new MachineLabels()), host: '127.0.0.1', port: 0, log: silentLogger });
  try {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { total: number; next: string | null; machines: { mac: string }[] } = JSON.parse((await curl([`${s.url}/machines?limit=1000${cursor ? `&cursor=${cursor}` : ''}`])).body);
      t.is(page.total, 2500);
      seen.push(...page.machines.map((m) => m.mac));
      cursor = page.next;
      pages++;
    } while (cursor);
    t.is(pages, 3);
    t.deepEqual(seen, Array.from({ length: 2500 }, (_, i) => macOf(i)));
    tl.record(macOf(7), 'dhcp.offer', { ip: '10.0.0.7' });
    const first = JSON.parse((await curl([`${s.url}/machines?limit=10`])).body);
    t.is(first.machines[7].stage, 'dhcp.offer', 'an event recorded before the request is in its answer');
    t.is(first.next, macOf(9));
  } finally {
    await s.close();
  }
});

test('pages are sized in bytes: names beyond ASCII come out whole', async (t) => {
  const tl = new BootTimeline();
  const named = new MachineLabels();
  for (let i = 0; i < 300; i++) {
    tl.record(macOf(i), 'http.script', { profile: 'zos-prod' });
    named.note(macOf(i), { hostname: `nœud-${i}-ü€𝄞` });
  }
  const s = await startManagementServer({ api: context(tl, named), host: '127.0.0.1', port: 0, log: silentLogger });
  try {
    for (const form of ['summary', 'full']) {
      const r = await curl([`${s.url}/machines?limit=1000&view=${form}`]);
      t.is(r.status, 200);
      const page = JSON.parse(r.body);
      t.is(page.machines.length, 300, form);
      t.is(page.machines[299].hostname ?? page.machines[299].labels.hostname, 'nœud-299-ü€𝄞', form);
    }
  } finally {
    await s.close();
  }
});

test('a page stops at its byte bound, whatever the limit', async (t) => {
  const tl = new BootTimeline();
  const big = new MachineLabels();
  for (let i = 0; i < 1000; i++) {
    tl.record(macOf(i), 'http.script', { note: 'x'.repeat(200) });
    big.note(macOf(i), { hostname: 'h'.repeat(256), serial: 's'.repeat(256) });
  }
  const s = await startManagementServer({ api: context(tl, big), host: '127.0.0.1', port: 0, log: silentLogger });
  try {
    const r = await curl([`${s.url}/machines?view=full&limit=1000`]);
    t.is(r.status, 200);
    const page = JSON.parse(r.body);
    t.true(r.body.length <= PAGE_MAX_BYTES + 200, `${r.body.length} bytes`);
    t.true(page.machines.length < 1000);
    t.is(page.next, page.machines.at(-1).mac);
  } finally {
    await s.close();
  }
});

test('the list is built in slices: timers run while 10,000 machines are indexed', async (t) => {
  const tl = new BootTimeline();
  for (let i = 0; i < 10_000; i++) tl.record(macOf(i), 'dhcp.ack', { ip: '10.0.0.1' });
  const index = new MachineIndex({ timeline: tl, labelsFor: () => undefined, slice: 256 });
  let turns = 0;
  let building = true;
  const spin = () => {
    turns++;
    if (building) setImmediate(spin);
  };
  setImmediate(spin);
  const snap = await index.snapshot();
  building = false;
  index.close();
  t.is(snap.macs.length, 10_000);
  // A turn per slice of 256 machines: 39 for 10,000.
  t.true(turns >= 35, `the event loop ran ${turns} times during the build`);
});
