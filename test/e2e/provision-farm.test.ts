// scripts/provision-farm.mjs end to end against the QEMU rig (issue 13):
// the rig gives a private network and nothing else (no server); the script,
// run inside its namespace on the bridge, checks the host, builds the node
// image (into the test's own folder), writes the configuration with the
// CSV's reservation, writes the farm's ISO and USB image, and runs
// `zeroboot serve` in the foreground. Three nodes boot, one after the other
// (one guest's boot at a time on a loaded host): a listed one, whose MAC
// has a reservation; one the CSV does not name; a listed one booting from
// the generated ISO instead of the network. The script prints its table
// and says every listed node reported; all three are in the registry, the
// reserved one at its address. A second run changes nothing and says so.
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { startRig, type Rig, type Vm } from '../../qemu/rig.ts';
import { instanceOf, loadProfile } from '../../qemu/profile.ts';
import { AGENT_MARKERS } from '../../image/init-services.ts';
import { killPid } from '../../lib/process.ts';
import { vmAddress } from '../helpers/agent-node.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = path.join(ROOT, 'scripts/provision-farm.mjs');
// TCG on a loaded 2-core machine: an image build, then a 42 MB initramfs through iPXE, Node, the agent.
const BUILD_MS = 40 * 60_000;
const REPORT_MS = 15 * 60_000;
const PROFILE = 'small-bios';

let rig: Rig;
let work = '';
let script: ChildProcess | undefined;
let output = '';
let args: string[] = [];
let reservedMac = '';
let unknownMac = '';
let reservedIp = '';
let isoMac = '';
const vms: Vm[] = [];

async function api<T>(p: string): Promise<T> {
  const r = await rig.ns.exec('curl', ['-sS', '--max-time', '20', `http://127.0.0.1:8081/api${p}`], { timeout: 30_000 });
  return JSON.parse(r.stdout) as T;
}

/** Waits until the script's output (all of it so far) matches. */
async function printed(re: RegExp, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!re.test(output)) {
    if (Date.now() > until || script?.exitCode !== null) throw new Error(`the script did not print ${re} (exit ${script?.exitCode}); its last lines:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function reported(vm: Vm): Promise<string> {
  const hit = await vm.console.waitFor(new RegExp(`${AGENT_MARKERS.accepted.source}|${AGENT_MARKERS.exit.source}`), REPORT_MS);
  const m = AGENT_MARKERS.accepted.exec(hit[0]);
  if (!m) throw new Error(`${vm.name}: ${hit[0]}; console tail:\n${vm.console.tail(1500)}`);
  return m[1];
}

test.before(async (t) => {
  t.timeout(BUILD_MS + 5 * 60_000);
  work = await mkdtemp(path.join(tmpdir(), 'zb-provision-e2e-'));
  rig = await startRig({ server: false, kvm: 'auto', logDir: process.env.ZEROBOOT_E2E_LOGS });
  const profile = await loadProfile(PROFILE);
  // The rig numbers instances from 0: the first VM is the listed one, the second is not in the CSV.
  reservedMac = instanceOf(profile, 0).bootMac;
  unknownMac = instanceOf(profile, 1).bootMac;
  isoMac = instanceOf(profile, 2).bootMac;
  reservedIp = rig.address.replace(/\.\d+$/, '.50');
  const csv = path.join(work, 'farm.csv');
  await writeFile(csv, `mac,hostname,ip\n${reservedMac},node-1,${reservedIp}\n${isoMac},node-3\n`);
  args = ['--farm-id', '7', '--interface', rig.network.bridge, '--runmode', 'test', '--csv', csv, '--foreground',
    '--image', path.join(ROOT, 'images/node.yaml'), '--image-dir', path.join(work, 'image'),
    '--config', path.join(work, 'zeroboot.yaml'), '--state-dir', path.join(work, 'state'), '--media-dir', path.join(work, 'media'), '--probe-ms', '2000',
    // The emulated timer is fine; the kernel's check of it can miss its window under TCG.
    '--kernel-arg', 'no_timer_check', '--wait-timeout', String(3 * REPORT_MS / 1000)];
  script = rig.ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', SCRIPT, ...args]);
  script.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  script.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await printed(/server: zeroboot serve runs in the foreground/, BUILD_MS);
});

test.after.always(async (t) => {
  t.log(output.split('\n').filter((l) => !l.startsWith('---')).slice(-30).join('\n'));
  if (script?.pid && script.exitCode === null) {
    killPid(script.pid, 'SIGTERM');
    await Promise.race([new Promise((r) => script!.once('exit', r)), new Promise((r) => setTimeout(r, 10_000))]);
  }
  await rig?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test.serial('the first run: checks, the image built, the configuration with the reservation, the server in the foreground', async (t) => {
  t.regex(output, new RegExp(`check: interface ${rig.network.bridge} has ${rig.address.replace(/\./g, '\\.')}/24`));
  t.regex(output, /no other DHCP server answered/);
  t.regex(output, /zeroboot answers in full mode/);
  t.regex(output, /image: built/);
  t.regex(output, /configuration: created/);
  t.regex(output, /media: wrote .*zos-farm7\.iso/);
  const config = await readFile(path.join(work, 'zeroboot.yaml'), 'utf8');
  t.regex(config, new RegExp(`- mac: ${reservedMac}\\n {4}hostname: node-1\\n {4}ip: ${reservedIp.replace(/\./g, '\\.')}\\n`));
  t.regex(config, /farmer_id: 7\n/);
});

test.serial('the listed node boots at its reserved address and reports; the script says every listed node reported', async (t) => {
  t.timeout(REPORT_MS + 2 * 60_000);
  const [vm] = await rig.boot(PROFILE);
  vms.push(vm);
  t.is(vm.mac, reservedMac);
  t.is(await vmAddress(vm, REPORT_MS), reservedIp, 'the reservation');
  const nodeId = await reported(vm);
  const row = new RegExp(`${reservedMac}\\s+node-1\\s+reported\\s+${reservedIp.replace(/\./g, '\\.')}\\s+${nodeId.slice(0, 15)}`);
  await printed(row, 2 * 60_000);
  t.regex(output, row, 'the table row: MAC, hostname, stage, IP, node id');
  t.notRegex(output, /all \d+ listed server\(s\) reported/, 'node-3 is still to come');
});

test.serial('a node the CSV does not name boots from the default group and reports too', async (t) => {
  t.timeout(REPORT_MS + 2 * 60_000);
  const [vm] = await rig.boot(PROFILE);
  vms.push(vm);
  t.is(vm.mac, unknownMac);
  const ip = await vmAddress(vm, REPORT_MS);
  t.not(ip, reservedIp);
  const nodeId = await reported(vm);
  const nodes = await api<{ nodes: { nodeId: string; macs: string[] }[] }>('/nodes');
  t.deepEqual(nodes.nodes.map((n) => n.macs[0]).sort(), [reservedMac, unknownMac].sort(), 'both nodes in the registry');
  t.true(nodes.nodes.some((n) => n.nodeId === nodeId));
});

test.serial('a listed node booting from the farm ISO (no network boot) reports; the script says every listed node reported', async (t) => {
  t.timeout(REPORT_MS + 2 * 60_000);
  const [vm] = await rig.boot(PROFILE, { medium: { kind: 'cdrom', path: path.join(work, 'media', 'zos-farm7.iso') } });
  vms.push(vm);
  t.is(vm.mac, isoMac);
  // The ISO's embedded command line, not the network's.
  const cmdline = await vm.console.waitFor(/Command line: .*/, REPORT_MS);
  t.regex(cmdline[0], /farmer_id=7 .*zeroboot\.server=http:\/\//);
  await vmAddress(vm, REPORT_MS);
  const nodeId = await reported(vm);
  await printed(/all 2 listed server\(s\) reported/, 2 * 60_000);
  t.regex(output, /zeroboot serve keeps running in the foreground/);
  const nodes = await api<{ nodes: { nodeId: string; macs: string[] }[] }>('/nodes');
  t.true(nodes.nodes.some((n) => n.nodeId === nodeId && n.macs.includes(isoMac)));
  const timeline = await api<{ timeline: { kind: string }[] }>(`/machines/${isoMac}`);
  t.false(timeline.timeline.some((e) => e.kind.startsWith('tftp.') || e.kind === 'http.kernel'), 'no network boot: no TFTP, no kernel download');
});

test.serial('a second run changes nothing and says so; its table has all three nodes reported', async (t) => {
  t.timeout(5 * 60_000);
  const again = await rig.ns.exec(process.execPath, ['--disable-warning=ExperimentalWarning', SCRIPT, ...args, '--json'], { timeout: 4 * 60_000 });
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /image: up to date/);
  t.regex(again.stderr, /configuration: unchanged/);
  t.regex(again.stderr, /media: up to date/);
  t.regex(again.stderr, /zeroboot serve already runs/);
  t.regex(again.stderr, /nothing to change: the host is provisioned as asked/);
  const out = JSON.parse(again.stdout) as { changes: unknown[]; dhcpMode: string; nodes: { mac: string; stage: string; listed: boolean }[] };
  t.deepEqual(out.changes, []);
  t.is(out.dhcpMode, 'full');
  t.deepEqual(out.nodes.map((n) => [n.mac, n.stage, n.listed]).sort(), [[reservedMac, 'reported', true], [unknownMac, 'reported', false], [isoMac, 'reported', true]].sort());
});
