// The rig's parts against real peers: serial consoles on a real pty, the
// namespace network (a Linux host there autoconfigures from our router
// advertisements), a real BIOS VM with QEMU's iPXE ROM reaching our server,
// and clean-up by pid when the owner stops, exits, crashes or is killed.
import test from 'ava';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SerialConsole, ConsoleTimeoutError, ConsoleExitError, cleanTerminalText } from '../../qemu/console.ts';
import { RigNetwork } from '../../qemu/network.ts';
import { startRig } from '../../qemu/rig.ts';
import type { Rig } from '../../qemu/rig.ts';
import { waitForOutput } from '../helpers/netns.ts';
import { isRunning } from '../../lib/process.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-qemu-rig-'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Asynchronous on purpose: a blocked event loop lets console timeouts fire
// before the output that arrived meanwhile is read.
const run = promisify(execFile);
const namespaces = async () => (await run('ip', ['netns', 'list'])).stdout;
const zeroboot = async (args: string[]) => (await run(path.join(ROOT, 'bin/zeroboot'), args)).stdout;

test('terminal text: escapes, carriage returns and split sequences', (t) => {
  t.deepEqual(cleanTerminalText('\x1bc\x1b[?7lSeaBIOS\r\n\x1b[0;1miPXE\x1b[0m ok\r\n\x1b[=3h'), { text: 'SeaBIOS\niPXE ok\n', rest: '' });
  t.deepEqual(cleanTerminalText('abc\x1b[0;3'), { text: 'abc', rest: '\x1b[0;3' });
  t.deepEqual(cleanTerminalText('line\r'), { text: 'line', rest: '\r' });
  t.is(cleanTerminalText('a\x07b\x00c\tz').text, 'abc\tz');
});

test('console: waitFor on a real pty, split output, log file, timeout and exit errors', async (t) => {
  const logPath = path.join(dir, 'console.log');
  const script = 'printf "\\033[1mboot\\033[0m\\r\\n"; sleep 0.3; printf "MARK ip=10.0.0.7 mac=52:54"; sleep 0.4; printf ":00:00:00:01\\r\\nlogin: "; sleep 0.5; printf "\\nend\\r\\n"; sleep 0.5; exit 3';
  const c = SerialConsole.spawn('/bin/sh', ['-c', script], { logPath, name: 'sh' });
  t.teardown(() => c.stop());
  let promptSeenWith = '';
  const prompt = c.waitFor('login: ', 5000).then(() => (promptSeenWith = c.log()));
  const before = await c.waitFor('boot', 5000);
  t.is(before[0], 'boot');
  const m = await c.waitFor(/MARK ip=(\S+) mac=(\S+)/, 5000);
  t.is(m[2], '52:54:00:00:00:01', 'a match is not cut at a chunk boundary');
  await prompt;
  t.false(promptSeenWith.includes('end'), 'a literal string at the end of the output matches at once');
  const again = await c.waitFor('boot', 100);
  t.is(again.index, before.index, 'earlier output still matches');
  const mark = c.mark();
  await t.throwsAsync(c.waitFor('boot', 300, { from: mark }), { instanceOf: ConsoleTimeoutError, message: /"boot" not seen on the console within 300 ms[\s\S]*console tail[\s\S]*MARK/ });
  await t.throwsAsync(c.waitFor('never printed', 10_000), { instanceOf: ConsoleExitError, message: /exited \(code 3\) before the console showed "never printed"/ });
  t.deepEqual(await c.exited, { exitCode: 3, signal: undefined });
  t.is(await readFile(logPath, 'utf8'), 'boot\nMARK ip=10.0.0.7 mac=52:54:00:00:00:01\nlogin: \nend\n');
  t.is(c.log(), 'boot\nMARK ip=10.0.0.7 mac=52:54:00:00:00:01\nlogin: \nend\n');
});

test('console: stop() kills by pid with SIGTERM then SIGKILL', async (t) => {
  const c = SerialConsole.spawn('/bin/sh', ['-c', 'trap "" TERM; echo started; while :; do sleep 1; done'], { logPath: path.join(dir, 'stubborn.log') });
  await c.waitFor('started', 5000);
  const t0 = Date.now();
  const e = await c.stop(500);
  t.true(Date.now() - t0 >= 400, 'waited for the grace period');
  t.truthy(e.signal);
  t.false(isRunning(c.pid));
});

test('network: bridge with IPv4 and IPv6, router advertisements a Linux host autoconfigures from, taps on the bridge', async (t) => {
  const net = await RigNetwork.create({ workDir: dir, subnet: '10.91.3.0/24', ipv6Prefix: 'fd91:3::/64' });
  t.teardown(() => net.destroy());
  t.is(net.address, '10.91.3.1');
  t.deepEqual([net.subnet.poolStart, net.subnet.poolEnd, net.subnet.netmask], ['10.91.3.100', '10.91.3.249', '255.255.255.0']);
  const addrs = await net.ns.ip('-br', 'addr', 'show', 'dev', 'br0');
  t.regex(addrs, /UP .*10\.91\.3\.1\/24 fd91:3::1\/64/);
  const host = await net.ns.host('br0', { mac: '52:54:00:91:03:01' });
  let v6 = '';
  for (let i = 0; i < 50 && !/fd91:3::/.test(v6); i++) {
    await new Promise((r) => setTimeout(r, 200));
    v6 = await host.ip('-6', '-br', 'addr', 'show', 'dev', 'eth0');
  }
  t.regex(v6, /fd91:3::5054:ff:fe91:301\/64/, 'SLAAC address from our router advertisement');
  const tap = await net.addTap();
  t.regex(await net.ns.ip('-d', 'link', 'show', 'dev', tap), /tun type tap/);
  t.regex(await net.ns.ip('link', 'show', 'dev', tap), /master br0/);
  await net.removeTap(tap);
  await t.throwsAsync(net.ns.ip('link', 'show', 'dev', tap));
});

test.serial('rig: a BIOS VM PXE-boots through QEMU\'s iPXE ROM to our script; the timeline shows DHCP, the script and the 404 with its reason', async (t) => {
  let rig: Rig | undefined;
  t.teardown(() => rig?.stop());
  rig = await startRig({ logDir: path.join(dir, 'logs'), kvm: 'off' });
  t.is(rig.serverUrl, 'http://10.77.0.1:8080');
  t.is(rig.accel, 'tcg');
  const [vm] = await rig.boot('small-bios');
  t.is(vm.name, 'small-bios-0');
  t.is(vm.console.path, path.join(dir, 'logs', 'small-bios-0.log'));
  await vm.console.waitFor('SeaBIOS', 30_000);
  const got = await vm.console.waitFor(new RegExp(`net0: (10\\.77\\.0\\.\\d+)/255\\.255\\.255\\.0`), 60_000);
  await vm.console.waitFor(/net0: fd77::[0-9a-f:]+\/64 gw fe80::/, 10_000);
  await vm.console.waitFor(`zeroboot: ${vm.mac} boots profile zos`, 30_000);
  await vm.console.waitFor('zeroboot: kernel attempt 1 failed, retrying', 30_000);
  const err = await rig.waitForEvent(vm.mac, 'http.error', 10_000);
  t.is(err.detail?.status, 404);
  t.regex(err.reason ?? '', /not found: \/image\/vmlinuz/);
  const tl = (await rig.timeline(vm.mac))!;
  const kinds = tl.timeline.map((e) => e.kind);
  for (const k of ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'http.script', 'http.error'] as const) t.true(kinds.includes(k), k);
  t.is(tl.lease?.ip, got[1]);
  t.is(await rig.timeline('02:00:00:00:00:99'), undefined);
  const second = await rig.boot('small-bios');
  t.is(second[0].name, 'small-bios-1', 'instance numbers continue');
  t.not(second[0].mac, vm.mac);

  const ns = rig.ns.name;
  const pids = [vm.pid, second[0].pid];
  await rig.stop();
  t.false((await namespaces()).includes(ns), 'namespace deleted');
  for (const pid of pids) t.false(isRunning(pid), `QEMU ${pid} killed`);
  t.true(existsSync(vm.console.path), 'logs the caller asked for stay');
  t.false(existsSync(rig.workDir), 'disks and firmware variables removed');
});

/** Starts the rig-owning child and waits for READY. */
async function owner(mode: string, stateFile: string): Promise<{ child: ChildProcess; ns: string; qemu: number }> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'test/helpers/qemu-rig-child.ts'), mode, stateFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await waitForOutput(child, /READY (\S+) (\d+) (\S+)\n/, 60_000);
  const [, ns, qemu] = /READY (\S+) (\d+)/.exec(line)!;
  return { child, ns, qemu: Number(qemu) };
}

const exitOf = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));

for (const mode of ['exit', 'throw', 'sigterm'] as const) {
  test.serial(`rig: the owner ${mode === 'sigterm' ? 'gets SIGTERM' : mode === 'exit' ? 'exits without stop()' : 'crashes'}: QEMU, server and namespace are gone`, async (t) => {
    const stateFile = path.join(dir, `state-${mode}.json`);
    const { child, ns, qemu } = await owner(mode === 'sigterm' ? 'wait' : mode, stateFile);
    t.teardown(() => child.kill('SIGKILL'));
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { namespace: string; pids: number[] };
    t.is(state.namespace, ns);
    t.true(state.pids.includes(qemu));
    if (mode === 'sigterm') child.kill('SIGTERM');
    await exitOf(child);
    t.false(isRunning(qemu), 'QEMU killed');
    for (const pid of state.pids) t.false(isRunning(pid), `pid ${pid} killed`);
    t.false((await namespaces()).includes(ns), 'namespace deleted');
    t.false(existsSync(stateFile), 'state file removed');
  });
}

test.serial('qemu down: cleans up after an owner killed with SIGKILL', async (t) => {
  const stateDir = path.join(dir, 'down-state');
  const stateFile = path.join(stateDir, 'rig.json');
  const { child, ns } = await owner('wait', stateFile);
  const state = JSON.parse(await readFile(stateFile, 'utf8')) as { pids: number[] };
  child.kill('SIGKILL');
  await exitOf(child);
  // QEMU goes with its pty (SIGHUP); the server and dnsmasq stay behind.
  await new Promise((r) => setTimeout(r, 300));
  const left = state.pids.filter(isRunning);
  t.true(left.length >= 2, 'a killed owner leaves the server and dnsmasq behind');
  t.true((await namespaces()).includes(ns));
  const out = await zeroboot(['qemu', 'down', '--state-dir', stateDir]);
  t.regex(out, new RegExp(`^qemu down: ${ns}: .*deleted namespace ${ns}$`, 'm'));
  for (const pid of left) {
    t.regex(out, new RegExp(`killed ${pid}\\b`));
    t.false(isRunning(pid), `pid ${pid} killed`);
  }
  t.false((await namespaces()).includes(ns));
  t.deepEqual(await readdir(stateDir), []);
  t.regex(await zeroboot(['qemu', 'down', '--state-dir', stateDir]), /no rig to tear down/);
});

test('CLI: profiles as text and JSON, help, one-line errors', async (t) => {
  const text = await zeroboot(['qemu', 'profiles']);
  t.regex(text, /^small-bios +bios +2 CPU +2G +NICs virtio +disks 8G ssd, 8G ssd$/m);
  t.regex(text, /^storage-uefi +uefi .*32G hdd, 32G hdd, 32G hdd, 32G hdd$/m);
  const json = JSON.parse(await zeroboot(['qemu', 'profiles', '--json'])) as { profiles: { name: string }[] };
  t.true(json.profiles.some((p) => p.name === 'multi-nic-bios'));
  for (const args of [['qemu', '--help'], ['qemu', 'up', '--help'], ['qemu', 'down', '--help'], ['qemu', 'profiles', '--help']]) {
    t.regex(await zeroboot(args), /^Usage: zeroboot qemu/);
  }
  const fail = async (args: string[]) => {
    try {
      await zeroboot(args);
      return { code: 0, err: '' };
    } catch (e) {
      const x = e as { code: number; stderr: string };
      return { code: x.code, err: x.stderr };
    }
  };
  const cases: [string[], number, RegExp][] = [
    [['qemu', 'up'], 2, /give at least one profile/],
    [['qemu', 'up', 'no-such'], 1, /no hardware profile "no-such"/],
    [['qemu', 'up', 'small-bios', '--count', '0'], 2, /--count must be an integer between 1 and 32/],
    [['qemu', 'up', 'small-bios', '--dhcp', 'relay'], 2, /--dhcp must be full or proxy/],
    [['qemu', 'up', 'small-bios', '--no-ipxe-rom'], 1, /SeaBIOS has no network boot of its own/],
    [['qemu', 'up', 'small-bios', '--image', '/nonexistent'], 2, /holds no vmlinuz/],
    [['qemu', 'sideways'], 2, /unknown command "sideways"/],
  ];
  for (const [args, code, re] of cases) {
    const r = await fail(args);
    t.is(r.code, code, args.join(' '));
    t.regex(r.err, re);
    t.is(r.err.trim().split('\n').length, 1, 'one line');
  }
});
