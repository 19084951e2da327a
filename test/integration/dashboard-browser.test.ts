// The dashboard in a real browser (Debian's chromium, headless, through
// playwright-core) against zeroboot serve in a namespace: a machine walked
// by real clients appears live, progresses, is marked with the cause it was
// made to fail with (a chainload loop), and its "why" panel explains it.
// Screenshots go to artifacts/ at the repository's root.
import test from 'ava';
import { mkdtemp, writeFile, mkdir, rm, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns, waitForOutput } from '../helpers/netns.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER = '10.80.0.1';
const MAC = '52:54:00:cc:00:01';
const QUIET = '52:54:00:cc:00:02';

test('the dashboard shows a machine live, its progress, and why it did not boot', async (t) => {
  if (!existsSync('/usr/bin/chromium')) return t.fail('chromium is not installed (scripts/setup.sh installs it)');
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-dash-'));
  const ns = await Netns.create('zbdash');
  t.teardown(async () => {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(path.join(dir, 'images'), { recursive: true });
  await writeFile(path.join(dir, 'images/vmlinuz'), Buffer.alloc(1000, 7));
  await writeFile(path.join(dir, 'images/initramfs.img'), Buffer.alloc(1000, 8));
  await writeFile(path.join(dir, 'udhcpc.sh'), '#!/bin/sh\n[ "$1" = bound ] || exit 0\necho "ip=$ip"\n');
  await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
  await writeFile(
    path.join(dir, 'zeroboot.yaml'),
    `server:
  address: ${SERVER}
  interfaces: [br0]
  stateDir: state
  dhcp: { mode: full, pool: { start: 10.80.0.100, end: 10.80.0.120 } }
  http: { port: 8080 }
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/vmlinuz, initrd: images/initramfs.img, args: { runmode: test } }
groups:
  - { name: all, profile: zos, selector: {} }
`,
  );
  await ns.bridge('br0', `${SERVER}/24`);
  const host = await ns.host('br0', { mac: MAC });
  const other = await ns.host('br0', { mac: QUIET });
  const server = ns.spawn(path.join(ROOT, 'bin/zeroboot'), ['serve', '--config', path.join(dir, 'zeroboot.yaml')]);
  await waitForOutput(server, /dhcp +full on br0/, 60_000);

  const artifacts = path.join(ROOT, 'artifacts');
  const browser = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'test/helpers/dashboard-browser.ts'), JSON.stringify({ url: 'http://127.0.0.1:8081/dashboard/', mac: MAC, artifacts, timeoutMs: 120_000 })]);
  let out = '';
  browser.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  browser.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => browser.on('exit', resolve));

  const udhcpc = (h: Netns) => h.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', '-s', path.join(dir, 'udhcpc.sh')], { timeout: 60_000 });
  const lease = async (h: Netns) => {
    const ip = /^ip=(.*)$/m.exec((await udhcpc(h)).stdout)?.[1];
    if (!ip) throw new Error('no lease');
    await h.exec('ip', ['addr', 'replace', `${ip}/24`, 'dev', 'eth0']);
  };
  // Another machine, so the list holds more than the one under test.
  await udhcpc(other);
  await lease(host);
  // The machine moves on only once the page has shown its first stage.
  await waitForOutput(browser, /^appeared$/m, 180_000);
  for (let round = 0; round < 2; round++) {
    if (round > 0) await lease(host);
    const r = await host.exec('atftp', ['-g', '-r', 'undionly.kpxe', '-l', '/dev/null', SERVER], { timeout: 60_000 });
    t.is(r.code, 0, r.stderr);
  }
  const code = await done;
  t.is(code, 0, out);
  const seen = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as { firstRow: string; laterRow: string; filtered: number; why: string; timelineRows: number; errors: string[] };
  t.regex(seen.firstRow, new RegExp(MAC));
  t.regex(seen.firstRow, /progressing/);
  t.notRegex(seen.firstRow, /downloaded again/, 'the first state shown is a boot under way');
  t.regex(seen.laterRow, /downloaded again/);
  t.is(seen.filtered, 1, 'the search narrows the list to the machine');
  t.regex(seen.why, /undionly\.kpxe was fetched 2 times/);
  t.regex(seen.why, /What to do:/);
  t.true(seen.timelineRows > 5);
  t.deepEqual(seen.errors, []);
  t.true(existsSync(path.join(artifacts, 'dashboard-2-why.png')));
});
