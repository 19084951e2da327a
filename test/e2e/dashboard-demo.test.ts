// The dashboard against a running `zeroboot demo --broken --keep` (2 QEMU
// nodes under the rig's accelerator, -accel tcg on CI, booted one after the
// other: the broken node is stopped once the server saw it fail, then the
// good one boots, so one guest runs at a time). Debian's chromium, headless
// through playwright-core, watches from inside the demo's namespace: both
// machines appear and progress live (no reload), the broken one's "why"
// panel names the failed download and shows its last console lines, and the
// good one's serial console shows the ZEROBOOT-UP marker in xterm.js. The
// demo's --dashboard-port serves the same page on the host's loopback.
// Screenshots go to artifacts/ at the repository's root.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, waitForOutput } from '../helpers/netns.ts';
import { instanceOf, loadProfile } from '../../qemu/profile.ts';
import { killPid } from '../../lib/process.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TIMEOUT_MS = 15 * 60_000;

test('the dashboard of a running demo: 2 nodes live, the failed one explained, the console with the marker', async (t) => {
  t.timeout(TIMEOUT_MS + 120_000);
  if (!existsSync('/usr/bin/chromium')) return t.fail('chromium is not installed (scripts/setup.sh installs it)');
  const hw = await loadProfile('small-bios');
  const broken = instanceOf(hw, 0).bootMac;
  const good = instanceOf(hw, 1).bootMac;

  const demo = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'cli/zeroboot.ts'), 'demo', '--broken', '--keep', '--dashboard-port', '0', '--timeout', String(TIMEOUT_MS / 1000)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let demoOut = '';
  demo.stdout!.on('data', (d: Buffer) => (demoOut += d.toString()));
  demo.stderr!.on('data', (d: Buffer) => (demoOut += d.toString()));
  const demoExit = new Promise<number | null>((r) => demo.on('exit', (code) => r(code)));
  t.teardown(async () => {
    // SIGINT: the demo's rig stops its VMs, server and namespace (by pid) before it exits.
    if (demo.exitCode === null) {
      killPid(demo.pid!, 'SIGINT');
      await Promise.race([demoExit, new Promise((r) => setTimeout(r, 60_000))]);
    }
  });

  const line = await waitForOutput(demo, /dashboard (http\S+) \(inside the namespace: ip netns exec (\S+) /, 20 * 60_000).catch((e: Error) => {
    throw new Error(`${e.message}\n${demoOut}`);
  });
  const [, url, ns] = /dashboard (http\S+) \(inside the namespace: ip netns exec (\S+) /.exec(line)!;
  t.regex(url, /\/dashboard\/\?token=/);
  // The same dashboard from the host, through the demo's port bridge: the token URL sets the cookie, the page comes.
  const hostLine = /dashboard on this host: (http\S+)\n/;
  for (const until = Date.now() + 60_000; !hostLine.test(demoOut) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 100));
  const hostUrl = hostLine.exec(demoOut)?.[1];
  t.truthy(hostUrl, demoOut);
  const viaHost = await fetch(hostUrl!, { redirect: 'manual' });
  t.is(viaHost.status, 303);
  const cookie = viaHost.headers.get('set-cookie')!.split(';')[0];
  const hostPage = await fetch(new URL('/dashboard/', hostUrl), { headers: { cookie } });
  t.is(hostPage.status, 200);
  t.regex(await hostPage.text(), /<script src="xterm\.js" integrity="sha256-/);

  const artifacts = path.join(ROOT, 'artifacts');
  const browser = spawn('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', path.join(ROOT, 'test/helpers/dashboard-demo-browser.ts'), JSON.stringify({ url, good, broken, artifacts, timeoutMs: TIMEOUT_MS })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  browser.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  browser.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => browser.on('exit', r));
  t.is(code, 0, `${out}\n--- demo ---\n${demoOut}`);
  const seen = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as { states: Record<string, string[]>; navigations: number; why: string; consoleStatus: string; consoleMarker: string; node: string; errors: string[] };

  // Live: one page load, and the good node passed through several stages before it reported.
  t.is(seen.navigations, 1);
  const goodStates = seen.states[good];
  t.true(goodStates.length >= 3, JSON.stringify(goodStates));
  t.regex(goodStates[goodStates.length - 1], /^reported/);
  t.true(seen.states[broken].some((s) => /A download failed/.test(s)), JSON.stringify(seen.states[broken]));
  // The why panel: the cause, the 404 on the missing kernel, and the node's own console lines.
  t.regex(seen.why, /A download failed/);
  t.regex(seen.why, /missing-vmlinuz/);
  t.regex(seen.why, /The last lines of its console:/);
  t.regex(seen.why, /missing-vmlinuz|No such file|iPXE/i);
  t.regex(seen.consoleMarker, new RegExp(`ZEROBOOT-UP ip=10\\.77\\.0\\.\\d+ mac=${good}`));
  t.regex(seen.consoleStatus, /small-bios-1 · live · read-only/);
  // The good node's panel: its id, last report time, disks and the memory from its inventory (small-bios: 2 GiB, less what the firmware and kernel keep).
  t.regex(seen.node, /Node \S{8,}/);
  t.regex(seen.node, /last report/);
  t.regex(seen.node, /Disks/);
  t.regex(seen.node, /memory\s+(1\.[5-9]|2\.0) GiB/);
  t.deepEqual(seen.errors, []);
  for (const s of ['1-appeared', '2-progressed', '3-why', '4-console']) t.true(existsSync(path.join(artifacts, `dashboard-demo-${s}.png`)), s);

  killPid(demo.pid!, 'SIGINT');
  await demoExit;
  t.false((await sh('ip', ['netns', 'list'])).split('\n').some((l) => l.split(' ')[0] === ns), `namespace ${ns} is gone`);
});
