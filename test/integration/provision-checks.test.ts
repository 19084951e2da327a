// scripts/provision-farm.mjs against real peers inside test namespaces: the
// farm interface is a bridge in one namespace, with a "router" host on it
// that runs dnsmasq as another DHCP server when a test wants one. Each
// failed check gives its own exit code and one line; a DISCOVER probe finds
// dnsmasq and the script chooses proxy mode with what dnsmasq must send; a
// real run writes the configuration and runs the server, and a second run
// changes nothing and says so.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Netns, waitForOutput } from '../helpers/netns.ts';
import { isAlive, killPid } from '../../lib/process.ts';
import { buildStamp } from '../../harness/qemu-image.ts';
import { EXIT } from '../../scripts/provision/exit-codes.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = path.join(ROOT, 'scripts/provision-farm.mjs');
const BRIDGE = 'farm0';
const ADDRESS = '10.213.0.1';
// A loaded 2-core machine: Node start, the probe's wait, the server's start.
const RUN_MS = 120_000;

let ns: Netns;
let work = '';
let imageDir = '';
const started: ChildProcess[] = [];

/** An "image" the script takes as built: the stamp of images/default.yaml, with small stand-ins for the kernel and initramfs. */
async function fakeImage(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'vmlinuz'), 'kernel');
  await writeFile(path.join(dir, 'initramfs.img'), 'initramfs');
  await writeFile(path.join(dir, '.zeroboot-build-stamp'), await buildStamp(path.join(ROOT, 'images/default.yaml')));
}

function farmArgs(name: string, extra: string[] = []): string[] {
  const dir = path.join(work, name);
  return ['--farm-id', '42', '--interface', BRIDGE, '--runmode', 'test', '--image', path.join(ROOT, 'images/default.yaml'), '--image-dir', imageDir,
    '--config', path.join(dir, 'zeroboot.yaml'), '--state-dir', path.join(dir, 'state'), '--unit-dir', path.join(dir, 'systemd'), '--probe-ms', '1500', '--no-media', ...extra];
}

async function provision(args: string[], where: Netns = ns) {
  return where.exec(process.execPath, ['--disable-warning=ExperimentalWarning', SCRIPT, ...args], { timeout: RUN_MS });
}

async function csv(name: string, text: string): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, text);
  return file;
}

/** dnsmasq handing out addresses on a router host next to the farm interface; stopped when the test ends. */
async function router(t: ExecutionContext, extra: string[] = []): Promise<void> {
  const host = await ns.host(BRIDGE, { cidr: '10.213.0.2/24' });
  const child = host.spawn('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--log-facility=-', '--port=0', '--pid-file=', '--bind-interfaces', '--interface=eth0',
    '--dhcp-range=10.213.0.100,10.213.0.150,255.255.255.0,10m', '--no-ping', `--dhcp-leasefile=${path.join(work, `dnsmasq-${host.name}.leases`)}`, '--dhcp-option=3,10.213.0.2', ...extra]);
  t.teardown(() => host.destroy());
  await waitForOutput(child, /DHCP, sockets bound exclusively to interface eth0/, 30_000);
}

test.before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'zb-provision-'));
  imageDir = path.join(work, 'image');
  await fakeImage(imageDir);
  ns = await Netns.create('zbprov');
  await ns.bridge(BRIDGE, `${ADDRESS}/24`);
  // A port on the bridge, so it has a link, as a farm switch gives it.
  await ns.host(BRIDGE);
});

test.after.always(async () => {
  for (const c of started) if (c.pid) killPid(c.pid);
  await ns?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

test.serial('a missing interface: exit 10 and the interfaces the host has', async (t) => {
  const r = await provision(farmArgs('missing').map((a) => (a === BRIDGE ? 'nope0' : a)));
  t.is(r.code, EXIT.noInterface, r.stderr);
  t.regex(r.stderr, /^provision-farm: interface nope0 does not exist \(this host has: farm0, vb[0-9a-f]+\)\n$/);
});

test.serial('an interface without an IPv4 address: exit 11', async (t) => {
  await ns.ip('link', 'add', 'bare0', 'type', 'veth', 'peer', 'name', 'bare1');
  await ns.ip('link', 'set', 'bare0', 'up');
  const r = await provision(farmArgs('bare').map((a) => (a === BRIDGE ? 'bare0' : a)));
  t.is(r.code, EXIT.noAddress, r.stderr);
  t.regex(r.stderr, /interface bare0 has no IPv4 address/);
});

test.serial('a bad CSV: exit 3 naming the file and line, before anything is written', async (t) => {
  const cases: [string, RegExp][] = [
    ['mac,hostname\n52:54:00:00:00:01,node-1\nzz:54:00:00:00:02,node-2\n', /bad1\.csv:3: "zz:54:00:00:00:02" is not a MAC address/],
    ['52:54:00:00:00:01,node-1\n52-54-00-00-00-01,node-2\n', /bad2\.csv:2: mac 52:54:00:00:00:01 is already on line 1/],
    ['52:54:00:00:00:01,node_1\n', /bad3\.csv:1: "node_1" is not a host name/],
    ['52:54:00:00:00:01,node-1,10.99.0.5\n', /10\.99\.0\.5 is not in farm0's subnet 10\.213\.0\.1\/24/],
    ['52:54:00:00:00:01,node-1,10.213.0.9,gold\n', /profile "gold" is not one this farm defines \(zos, zos-secureboot\)/],
    ['52:54:00:00:00:01\n', /bad6\.csv:1: expected mac,hostname\[,ip\]\[,profile\], got 1 column/],
  ];
  for (const [i, [text, want]] of cases.entries()) {
    const file = await csv(`bad${i + 1}.csv`, text);
    const r = await provision([...farmArgs(`bad${i + 1}`), '--csv', file]);
    t.is(r.code, EXIT.badCsv, r.stderr);
    t.regex(r.stderr, want);
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, 'one line, no stack trace');
    await t.throwsAsync(stat(path.join(work, `bad${i + 1}`, 'zeroboot.yaml')), undefined, 'no configuration written');
  }
});

test.serial('a busy port: exit 12 naming the process that holds it', async (t) => {
  const holder = ns.spawn(process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.bind(69,'0.0.0.0',()=>console.log('bound'))"]);
  started.push(holder);
  await waitForOutput(holder, /bound/, 30_000);
  try {
    const r = await provision(farmArgs('busy'));
    t.is(r.code, EXIT.portBusy, r.stderr);
    t.regex(r.stderr, new RegExp(`udp 69 \\(TFTP\\) is held by node pid ${holder.pid} on 0\\.0\\.0\\.0:69`));
  } finally {
    killPid(holder.pid!);
    await new Promise((r) => (holder.exitCode === null ? holder.once('exit', r) : r(null)));
  }
});

test.serial('no other DHCP server on the segment: full mode with a pool in the subnet (dry run: nothing written)', async (t) => {
  const r = await provision([...farmArgs('alone'), '--dry-run', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.dhcpMode, 'full');
  t.deepEqual(out.otherDhcpServers, []);
  t.regex(r.stderr, /no other DHCP server answered within 1500 ms/);
  t.regex(r.stderr, /configuration: would create .*\n[\s\S]*\+    mode: full\n[\s\S]*\+      start: 10\.213\.0\.128\n/);
  t.regex(r.stderr, /service: would run systemctl enable zeroboot\.service/);
  await t.throwsAsync(stat(path.join(work, 'alone', 'zeroboot.yaml')));
  await t.throwsAsync(stat(path.join(work, 'alone', 'systemd', 'zeroboot.service')));
});

test.serial('dnsmasq answers the DISCOVER probe: proxy mode, and what dnsmasq must send for the signed chain', async (t) => {
  await router(t);
  const file = await csv('proxy.csv', 'mac,hostname,ip\n52:54:00:00:00:01,node-1,10.213.0.21\n');
  const r = await provision([...farmArgs('proxy'), '--csv', file, '--dry-run', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.dhcpMode, 'proxy');
  t.is(out.otherDhcpServers.length, 1);
  t.is(out.otherDhcpServers[0].server, '10.213.0.2');
  t.is(out.otherDhcpServers[0].router, '10.213.0.2');
  t.regex(out.otherDhcpServers[0].yiaddr, /^10\.213\.0\.1[0-5]\d$/);
  t.true(out.advice.some((l: string) => l.includes(`it must send next-server ${ADDRESS}`) && l.includes(`dhcp-boot=,,${ADDRESS}`)), out.advice.join('\n'));
  t.true(out.advice.some((l: string) => /52:54:00:00:00:01 -> 10\.213\.0\.21/.test(l)), 'the reservation to make on the other server');
  t.regex(r.stderr, /\+    mode: proxy\n/);

  const full = await provision([...farmArgs('proxy'), '--dhcp', 'full', '--dry-run']);
  t.is(full.code, EXIT.dhcpConflict, full.stderr);
  t.regex(full.stderr, /--dhcp full, but another DHCP server answers on farm0: 10\.213\.0\.2/);
});

test.serial('a router that already names this host as next-server is told so', async (t) => {
  await router(t, [`--dhcp-boot=,,${ADDRESS}`]);
  const r = await provision([...farmArgs('nextserver'), '--dry-run', '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.dhcpMode, 'proxy');
  t.true(out.advice.some((l: string) => l.includes(`already names this host (${ADDRESS}) as next-server`)), out.advice.join('\n'));
});

test.serial('a real run writes the configuration and runs the server; a second run changes nothing and says so', async (t) => {
  const file = await csv('farm.csv', '52:54:00:00:00:01,node-1,10.213.0.21\n52:54:00:00:00:02,node-2\n');
  const args = [...farmArgs('real'), '--csv', file, '--foreground', '--no-wait'];
  const first = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', SCRIPT, ...args]);
  started.push(first);
  let out = '';
  first.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  first.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitForOutput(first, /zeroboot serve keeps running in the foreground/, RUN_MS);
  t.regex(out, /configuration: created .*real\/zeroboot\.yaml/);
  t.regex(out, /2 change\(s\) made/);
  const config = await readFile(path.join(work, 'real', 'zeroboot.yaml'), 'utf8');
  t.regex(config, /- mac: 52:54:00:00:00:01\n {4}hostname: node-1\n {4}ip: 10\.213\.0\.21\n/);
  t.regex(config, /farmer_id: 42\n/);
  t.regex(config, /runmode: test\n/);
  t.regex(config, new RegExp(`zeroboot.server: http://${ADDRESS.replace(/\./g, '\\.')}:8080\n`));

  const again = await provision([...args, '--json']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, new RegExp(`ports 67, 69 and 8080 are held by zeroboot serve \\(pid \\d+\\), this farm's server`));
  t.regex(again.stderr, /no other DHCP server answered/, "our own server's offer is not another server");
  t.regex(again.stderr, /image: up to date/);
  t.regex(again.stderr, /configuration: unchanged/);
  t.regex(again.stderr, /zeroboot serve already runs/);
  t.regex(again.stderr, /nothing to change: the host is provisioned as asked/);
  t.deepEqual(JSON.parse(again.stdout).changes, []);
  t.is(await readFile(path.join(work, 'real', 'zeroboot.yaml'), 'utf8'), config, 'the file is the same');
  await t.throwsAsync(stat(path.join(work, 'real', 'zeroboot.yaml.bak')), undefined, 'not rewritten');

  // A changed list while the old server runs: the diff, then a clear refusal to start a second server.
  const more = await csv('farm2.csv', '52:54:00:00:00:01,node-1,10.213.0.21\n52:54:00:00:00:02,node-2\n52:54:00:00:00:03,node-3\n');
  const dry = await provision([...farmArgs('real'), '--csv', more, '--foreground', '--no-wait', '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /configuration: would update .*\n[\s\S]*\+  - mac: 52:54:00:00:00:03\n\+    hostname: node-3\n/);
  t.regex(dry.stdout, /server: zeroboot serve \(pid \d+\) runs with the previous configuration: stop it and run again/);
  t.is(await readFile(path.join(work, 'real', 'zeroboot.yaml'), 'utf8'), config, 'a dry run writes nothing');
  const refused = await provision([...farmArgs('real'), '--csv', more, '--foreground', '--no-wait']);
  t.is(refused.code, EXIT.portBusy, refused.stderr);
  t.regex(refused.stderr, /runs with the previous configuration/);
  t.is(await readFile(path.join(work, 'real', 'zeroboot.yaml'), 'utf8'), config, 'refused before writing, so the next run still applies it');

  killPid(first.pid!, 'SIGTERM');
  const code = await new Promise((r) => (first.exitCode === null ? first.once('exit', r) : r(first.exitCode)));
  t.is(code, 0);
});

test.serial('stopped while it waits for the reports, the script takes its server down with it', async (t) => {
  const file = await csv('wait.csv', '52:54:00:00:00:01,node-1\n');
  const child = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', SCRIPT, ...farmArgs('wait'), '--csv', file, '--foreground']);
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitForOutput(child, /waiting for 1 listed server\(s\)/, RUN_MS);
  const pid = Number(/zeroboot serve runs in the foreground \(pid (\d+)/.exec(out)![1]);
  t.true(isAlive(pid), 'the server runs while the script waits');
  const exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  killPid(child.pid!, 'SIGTERM');
  t.is(await exited, 143);
  const until = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  t.false(isAlive(pid), 'no server left behind');
});
