// The dashboard's page and live feed on the management listener: the page
// with its locked-down headers, the feed's first snapshot and later changes,
// its client cap and the dropping of a client that never reads, and the
// token: the page opened with ?token= keeps it in a cookie that is good for
// reads only.
import test from 'ava';
import { request, type IncomingMessage } from 'node:http';
import { spawn } from 'node:child_process';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import { MachineLabels } from '../../boot/machine-labels.ts';
import { silentLogger } from '../../boot/log.ts';
import { startManagementServer, MachineIndex } from '../../boot/http/index.ts';
import type { ManagementServer } from '../../boot/http/index.ts';
import type { ApiContext } from '../../boot/http/api.ts';

const TOKEN = 'dash-token-0123456789abcdef';
const timeline = new BootTimeline();
const labels = new MachineLabels();
/** When each MAC's node last reported (the registry's answer). */
const reports = new Map<string, number>();
let open: ManagementServer;
let guarded: ManagementServer;

test.before(async () => {
  timeline.record('52:54:00:00:00:01', 'dhcp.discover', { arch: 0 });
  const labelsFor = (m: string) => labels.get(m);
  const api: ApiContext = { timeline, selector: createSelector([{ name: 'p', kernel: 'k', initrd: [], args: {} }], [], []), index: new MachineIndex({ timeline, labelsFor }), labelsFor, startedAt: new Date(), reportedAt: (m) => reports.get(m) };
  open = await startManagementServer({ api, host: '127.0.0.1', port: 0, log: silentLogger });
  guarded = await startManagementServer({ api, host: '127.0.0.1', port: 0, token: TOKEN, log: silentLogger });
});

test.after.always(async () => {
  await open?.close();
  await guarded?.close();
});

const base = (s: ManagementServer) => s.url.replace(/\/api$/, '');

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    // A feed answered 200 would never end: the deadline turns that into a failure, not a hang.
    const req = request(url, { method, headers, agent: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no complete answer within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** An open feed: its messages as they come. */
function feed(url: string): Promise<{ res: IncomingMessage; messages: { changed: { mac: string; state: string }[]; removed: string[] }[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const messages: { changed: { mac: string; state: string }[]; removed: string[] }[] = [];
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.startsWith('data: ')) messages.push(JSON.parse(block.slice(6)));
        }
      });
      resolve({ res, messages, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(f: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial('the page: its own script only (CSP by hash), no framing, every value set as text', async (t) => {
  const root = await get(`${base(open)}/`);
  t.is(root.status, 302);
  t.is(root.headers.location, '/dashboard/');
  const page = await get(`${base(open)}/dashboard/`);
  t.is(page.status, 200);
  t.regex(String(page.headers['content-security-policy']), /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  t.regex(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
  t.regex(page.body, /new EventSource\('\/api\/events'\)/);
  t.notRegex(page.body, /innerHTML/, 'node-supplied values never go in as HTML');
});

test.serial('the feed sends every machine first, then what changed', async (t) => {
  const f = await feed(`${open.url}/events`);
  t.teardown(f.close);
  t.is(f.res.headers['content-type'], 'text/event-stream');
  await until(() => f.messages.length > 0);
  t.deepEqual(f.messages[0].changed.map((m) => m.mac), ['52:54:00:00:00:01']);
  t.is(f.messages[0].changed[0].state, 'progressing');
  timeline.record('52:54:00:00:00:02', 'dhcp.discover', { arch: 0 });
  await until(() => f.messages.some((m) => m.changed.some((c) => c.mac === '52:54:00:00:00:02')));
  t.false(f.messages.slice(1).some((m) => m.changed.some((c) => c.mac === '52:54:00:00:00:01')), 'an unchanged machine is not sent again');
});

test.serial('a machine shown stopped is sent again as reported when its node reports (no timeline event says so)', async (t) => {
  const mac = '52:54:00:00:00:03';
  timeline.record(mac, 'dhcp.discover', { arch: 0 });
  timeline.record(mac, 'http.error', { path: '/image/vmlinuz', status: 404 }, 'not found');
  const f = await feed(`${open.url}/events`);
  t.teardown(f.close);
  const rowsOf = () => f.messages.flatMap((m) => m.changed.filter((c) => c.mac === mac));
  await until(() => rowsOf().some((r) => r.state === 'stopped'));
  reports.set(mac, Date.now());
  await until(() => rowsOf().some((r) => r.state === 'reported'));
  t.pass();
});

test.serial('the feed takes 16 clients; one more gets 503; a client that never reads is dropped', async (t) => {
  const feeds = await Promise.all(Array.from({ length: 16 }, () => feed(`${guarded.url}/events?x`).catch(() => undefined)));
  t.teardown(() => feeds.forEach((f) => f?.close()));
  t.true(feeds.every((f) => f?.res.statusCode === 401), 'without the token the feed is refused');
  feeds.forEach((f) => f?.close());
  // The previous test's feed may not be seen closed yet: open 16 until all 16 are taken.
  let many: Awaited<ReturnType<typeof feed>>[] = [];
  for (const deadline = Date.now() + 20_000; ; ) {
    many = await Promise.all(Array.from({ length: 16 }, () => feed(`${open.url}/events`)));
    if (many.every((f) => f.res.statusCode === 200) || Date.now() > deadline) break;
    many.forEach((f) => f.close());
    await new Promise((r) => setTimeout(r, 200));
  }
  t.teardown(() => many.forEach((f) => f.close()));
  t.deepEqual(many.map((f) => f.res.statusCode), Array(16).fill(200));
  const extra = await get(`${open.url}/events`);
  t.is(extra.status, 503);
  many.forEach((f) => f.close());
  // A client that asks and never reads (a 4 KiB receive buffer, so the kernel holds little for it): its
  // unread bytes pile up at the server, and the feed drops it rather than buffer for it. It reads only
  // after the storm of changes, and must then find the connection closed.
  const port = new URL(open.url).port;
  const reader = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", ${port}))
s.sendall(b"GET /api/events HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
sys.stdout.write("asked\\n"); sys.stdout.flush()
sys.stdin.readline()
s.settimeout(10)
end = time.time() + 20
try:
    while time.time() < end:
        if not s.recv(65536):
            print("closed"); sys.exit(0)
except (ConnectionResetError, socket.timeout) as e:
    print("closed" if isinstance(e, ConnectionResetError) else "open"); sys.exit(0)
print("open")
`;
  const py = spawn('python3', ['-c', reader], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => py.kill());
  let said = '';
  py.stdout.on('data', (d: Buffer) => (said += d.toString()));
  await until(() => said.includes('asked'));
  const macOf = (i: number) => `52:54:01:${[i >> 16, (i >> 8) & 255, i & 255].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
  // Each tick sends the machines that changed: about 1.6 MB per round here.
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < 4000; i++) timeline.record(macOf(i), 'dhcp.discover', { arch: 0, round, pad: 'x'.repeat(200) });
    await new Promise((r) => setTimeout(r, 700));
  }
  py.stdin.write('go\n');
  await until(() => /closed|open/.test(said.replace('asked', '')), 60_000);
  const closed = said.includes('closed');
  t.true(closed);
});

test.serial('the token: refused without it; ?token= sets an HttpOnly cookie; the cookie is good for reads, not for writes', async (t) => {
  t.is((await get(`${base(guarded)}/dashboard/`)).status, 401);
  const wrong = await get(`${base(guarded)}/dashboard/?token=nope`);
  t.is(wrong.status, 401);
  const set = await get(`${base(guarded)}/dashboard/?token=${TOKEN}`);
  t.is(set.status, 303);
  const cookie = String(set.headers['set-cookie']);
  t.regex(cookie, /HttpOnly/);
  t.regex(cookie, /SameSite=Strict/);
  const jar = cookie.split(';')[0];
  t.is((await get(`${base(guarded)}/dashboard/`, { cookie: jar })).status, 200);
  t.is((await get(`${guarded.url}/machines`, { cookie: jar })).status, 200);
  t.is((await get(`${guarded.url}/nodes/x/namespaces`, { cookie: jar }, 'POST')).status, 401);
});
