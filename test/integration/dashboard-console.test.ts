// Rig VM consoles in the dashboard, without QEMU: a real pseudo-terminal
// console (SerialConsole running sh/cat) published to the server's console
// socket the way the rig does it, read over the websocket the page uses.
// Read-only by default; input only with input on and the token; the limits
// (viewers, unread bytes, scrollback) each hold; the why answer carries the
// console's last lines; the page shows the console in xterm.js under its CSP.
import test from 'ava';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import { MachineLabels } from '../../boot/machine-labels.ts';
import { silentLogger } from '../../boot/log.ts';
import { startManagementServer, MachineIndex } from '../../boot/http/index.ts';
import type { ManagementServer } from '../../boot/http/index.ts';
import type { ApiContext } from '../../boot/http/api.ts';
import { ConsoleHub, CONSOLE_SOCKET } from '../../boot/http/console-hub.ts';
import { SerialConsole } from '../../qemu/console.ts';
import { publishConsole } from '../../qemu/console-publish.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'console-token-0123456789abcdef';
const SCROLLBACK = 4096;
const MAX_VIEWERS = 2;
const MAX_UNREAD = 64 * 1024;
const VM_MAC = '52:54:00:dd:00:01';
const FLOOD_MAC = '52:54:00:dd:00:02';

/** The text in the page's terminal (its top-level `term`, a script-scope binding, not a window property). */
const TERM_TEXT = '(() => { const b = term.buffer.active; const out = []; for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? ""); return out.join("\\n"); })()';

const timeline = new BootTimeline();
let dir: string;
let hub: ConsoleHub;
let readOnly: ManagementServer;
let writable: ManagementServer;
let vm: SerialConsole;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-console-'));
  hub = new ConsoleHub({ scrollbackBytes: SCROLLBACK, maxSessions: 4, log: silentLogger });
  await hub.listen(path.join(dir, CONSOLE_SOCKET));
  timeline.record(VM_MAC, 'dhcp.discover', { arch: 0 });
  timeline.record(VM_MAC, 'http.error', { path: '/image/vmlinuz' }, 'status 404');
  const labels = new MachineLabels();
  const labelsFor = (m: string) => labels.get(m);
  const api: ApiContext = {
    timeline, selector: createSelector([{ name: 'p', kernel: 'k', initrd: [], args: {} }], [], []), index: new MachineIndex({ timeline, labelsFor }), labelsFor, startedAt: new Date(),
    consoleTail: (m) => hub.byMac(m)?.tail(),
  };
  const consoles = { hub, maxClients: MAX_VIEWERS, maxUnreadBytes: MAX_UNREAD };
  readOnly = await startManagementServer({ api, host: '127.0.0.1', port: 0, log: silentLogger, consoles: { ...consoles, input: false } });
  writable = await startManagementServer({ api, host: '127.0.0.1', port: 0, token: TOKEN, log: silentLogger, consoles: { ...consoles, input: true } });
  // A console like a VM's: a marker, then whatever is typed on it comes back (the terminal echoes it, cat repeats it).
  vm = SerialConsole.spawn('sh', ['-c', 'printf "SeaBIOS\\r\\nZEROBOOT-UP ip=10.0.0.5 mac=52:54:00:dd:00:01\\r\\n"; exec cat'], { logPath: path.join(dir, 'vm.log'), name: 'vm-0' });
  const published = publishConsole(vm, path.join(dir, CONSOLE_SOCKET), { name: 'vm-0', macs: [VM_MAC] });
  if ((await published.result) !== 'ok') throw new Error(await published.result);
  await vm.waitFor('ZEROBOOT-UP', 10_000);
});

test.after.always(async () => {
  await vm?.stop();
  await readOnly?.close();
  await writable?.close();
  await hub?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const wsUrl = (s: ManagementServer, mac: string) => s.url.replace(/^http/, 'ws') + `/console/${mac}`;

interface Viewer {
  ws: WebSocket;
  hello: Promise<{ name: string; live: boolean; input: boolean }>;
  text: () => string;
  closed: Promise<{ code: number; reason: string }>;
}

/** A console viewer as the page opens it; rejects with the HTTP status when the upgrade is refused. */
function view(url: string, headers: Record<string, string> = {}): Promise<Viewer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    let out = '';
    let helloResolve: (h: { name: string; live: boolean; input: boolean }) => void = () => undefined;
    const hello = new Promise<{ name: string; live: boolean; input: boolean }>((r) => (helloResolve = r));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d: Buffer, binary: boolean) => {
      if (binary) out += d.toString('utf8');
      else helloResolve(JSON.parse(d.toString()));
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', (e) => reject(e));
    ws.on('open', () => resolve({ ws, hello, text: () => out, closed }));
  });
}

async function until(f: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function consoles(s: ManagementServer, headers: Record<string, string> = {}): Promise<{ consoles: { name: string; macs: string[]; live: boolean; scrollbackBytes: number }[]; viewers: number }> {
  const r = await fetch(`${s.url}/consoles`, { headers });
  return (await r.json()) as never;
}

test.serial('a published console shows its scrollback and live output to a viewer; read-only by default', async (t) => {
  const v = await view(wsUrl(readOnly, VM_MAC));
  t.like(await v.hello, { name: 'vm-0', live: true, input: false });
  await until(() => v.text().includes('ZEROBOOT-UP ip=10.0.0.5'), 'the marker');
  t.like((await consoles(readOnly)).consoles.find((c) => c.name === 'vm-0'), { macs: [VM_MAC], live: true });
  // Typing on a read-only console closes the viewer and nothing reaches the VM.
  const mark = vm.mark();
  v.ws.send('typed-by-a-viewer\r');
  t.is((await Promise.race([v.closed, new Promise<{ code: number }>((r) => setTimeout(() => r({ code: -1 }), 10_000))])).code, 4003);
  await t.throwsAsync(vm.waitFor('typed-by-a-viewer', 1500, { from: mark }));
});

test.serial('input on: a viewer with the token types on the console; without it, or from another origin, refused', async (t) => {
  await t.throwsAsync(view(wsUrl(writable, VM_MAC)), { message: 'status 401' });
  await t.throwsAsync(view(wsUrl(writable, VM_MAC), { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' }), { message: 'status 403' });
  const v = await view(wsUrl(writable, VM_MAC), { cookie: `zeroboot_token=${TOKEN}` });
  t.like(await v.hello, { input: true });
  const mark = vm.mark();
  v.ws.send('echo-from-the-page\r');
  await vm.waitFor('echo-from-the-page', 10_000, { from: mark });
  await until(() => v.text().includes('echo-from-the-page'), 'the echo in the viewer');
  v.ws.close();
  await v.closed;
});

test.serial('a machine without a console: the viewer is told so', async (t) => {
  const v = await view(wsUrl(readOnly, '52:54:00:dd:00:99'));
  t.is((await v.closed).code, 4404);
});

test.serial('viewers are capped', async (t) => {
  const open = [await view(wsUrl(readOnly, VM_MAC)), await view(wsUrl(readOnly, VM_MAC))];
  t.is(open.length, MAX_VIEWERS);
  await t.throwsAsync(view(wsUrl(readOnly, VM_MAC)), { message: 'status 503' });
  for (const v of open) v.ws.close();
  await Promise.all(open.map((v) => v.closed));
  await until(async () => (await consoles(readOnly)).viewers === 0, 'the viewers to go');
  (await view(wsUrl(readOnly, VM_MAC))).ws.close();
});

test.serial('a viewer that does not read is dropped; the scrollback stays bounded', async (t) => {
  // A publisher speaking the socket's protocol directly, with a lot to say.
  const pub = connect(path.join(dir, CONSOLE_SOCKET));
  t.teardown(() => pub.destroy());
  pub.write(JSON.stringify({ name: 'flood-0', macs: [FLOOD_MAC] }) + '\n');
  await until(() => hub.get('flood-0')?.live === true, 'the flood publisher');
  const slow = await view(wsUrl(readOnly, FLOOD_MAC));
  slow.ws.pause();
  const reader = await view(wsUrl(readOnly, FLOOD_MAC));
  const line = Buffer.from('x'.repeat(1023) + '\n');
  let sent = 0;
  // Far more than the loopback socket buffers hold plus the unread limit.
  while (sent < 48 * 1024 * 1024 && (await consoles(readOnly)).viewers === 2) {
    for (let i = 0; i < 1024; i++) pub.write(line);
    sent += 1024 * line.length;
    await new Promise((r) => pub.write('', () => r(undefined)));
  }
  await until(async () => (await consoles(readOnly)).viewers === 1, 'the slow viewer to be dropped');
  t.true(sent < 48 * 1024 * 1024, 'dropped before the flood ended');
  await until(() => reader.text().length >= sent - SCROLLBACK, 'the reading viewer to get everything');
  // Small chunks one at a time (a big one is cut on its own): the scrollback drops the oldest.
  for (let i = 0; i < 60; i++) {
    const before = reader.text().length;
    pub.write(`small line ${String(i).padStart(2, '0')} ${'y'.repeat(84)}\n`);
    await until(() => reader.text().length > before, 'a small line');
  }
  const held = (await consoles(readOnly)).consoles.find((c) => c.name === 'flood-0')!;
  t.true(held.scrollbackBytes <= SCROLLBACK, `scrollback ${held.scrollbackBytes} bytes`);
  const late = await view(wsUrl(readOnly, FLOOD_MAC));
  await until(() => late.text().length > 0, 'the late viewer\'s scrollback');
  t.true(late.text().length <= SCROLLBACK);
  reader.ws.close();
  late.ws.close();
});

test.serial('the why answer carries the console\'s last lines', async (t) => {
  const why = (await (await fetch(`${readOnly.url}/machines/${VM_MAC}/why`)).json()) as { cause?: { id: string }; console?: string[] };
  t.is(why.cause?.id, 'download-failed');
  t.true(why.console?.some((l) => l.startsWith('ZEROBOOT-UP ip=10.0.0.5')), JSON.stringify(why.console));
});

test.serial('the page shows the console in xterm.js, under a CSP that allows only its own scripts', async (t) => {
  if (!existsSync('/usr/bin/chromium')) return t.fail('chromium is not installed (scripts/setup.sh installs it)');
  timeline.record(VM_MAC, 'dhcp.request', { ip: '10.0.0.5' });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => (m.type() === 'error' ? errors.push(m.text()) : undefined));
  await page.goto(`${writable.url.replace(/\/api$/, '')}/dashboard/?token=${TOKEN}`);
  await page.locator(`.row[data-mac="${VM_MAC}"]`).click({ timeout: 60_000 });
  await page.locator('#why pre.tail').waitFor({ timeout: 60_000 });
  t.regex(await page.locator('#why').innerText(), /ZEROBOOT-UP ip=10\.0\.0\.5/);
  // The terminal's buffer, read in the page: the page's top-level `term`.
  const termText = () => page.evaluate<string>(TERM_TEXT);
  await page.waitForFunction(() => /read-only|input on/.test(document.getElementById('constatus')?.textContent ?? ''), undefined, { timeout: 60_000 });
  await until(async () => (await termText()).includes('ZEROBOOT-UP ip=10.0.0.5'), 'the marker in the terminal', 60_000);
  t.regex(await page.locator('#constatus').innerText(), /vm-0 · live · input on/);
  await mkdir(path.join(ROOT, 'artifacts'), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, 'artifacts', 'dashboard-console.png') });
  t.deepEqual(errors, []);
});
