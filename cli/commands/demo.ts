// `zeroboot demo`, the main job: build the node image, start a private
// network with the server, PXE-boot a node of the default hardware profile
// under QEMU until the image reports it is up, show what the server recorded
// for it (boot timeline, then the node agent's signed report from the
// registry), and tear everything down.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, stringOpt, intOpt, UsageError } from '../args.ts';
import { nodeView, renderNodeView, type NodeView } from './node-report-view.ts';

export const DEMO_HELP = `Usage: zeroboot demo [options]

Builds the node image (images/node.yaml, into images/node: the default image
plus Node and the node agent), starts a private network namespace with
'zeroboot serve' (full DHCP, TFTP, HTTP) and PXE-boots one QEMU node of the
default hardware profile from it: DHCP, the iPXE script, kernel and
initramfs over HTTP, until the image prints ZEROBOOT-UP. It prints the
node's boot-event timeline, then waits for the agent's first signed report
and prints it as the server's registry holds it (GET /api/nodes/<id>):
CPU, memory, NICs (the boot NIC marked), disks with their SSD/HDD type and
state (a foreign disk with its reason), capacity (CRU, MRU, SRU, HRU) and
the zdb endpoints. Then it tears everything down. Needs root (network
namespaces).

With --profile storage-uefi the node has 1 SSD and 4 HDDs, so 4 zdbs.
With --profile secureboot-uefi the node has Secure Boot on and Microsoft's
keys enrolled, and boots the signed chain instead: the firmware's PXE fetches
shim, shim fetches GRUB, GRUB its configuration, then Debian's signed kernel
and the initramfs over TFTP; the report then says Secure Boot is enabled.
It boots the default image (images/default.yaml) when the node image has no
signed loaders, and that image has no agent: no report then.

With --broken a node made to fail boots first: the server sends it a
profile whose kernel file is missing, so its iPXE gets a 404. Once the
server recorded that, the demo prints the server's "why didn't it boot?"
answer (with the node's last console lines) and stops that VM; then the good
node boots. The server's dashboard (printed as "dashboard <url>", on the
management listener inside the namespace, token in the URL) shows both
machines live, the "why" panel, and each VM's serial console (read-only):
the rig hands every VM console to the server over <stateDir>/consoles.sock.

Options:
  --profile NAME   hardware profile to boot (default small-bios)
  --broken         boot a node made to fail (missing kernel) before the good one
  --dashboard-port N  also offer the dashboard on the host at 127.0.0.1:N
                   (0: any free port), forwarded into the namespace
  --timeout S      give up after S seconds (default 300)
  --json           print one JSON document on stdout (boot, timeline, node
                   report); progress goes to stderr
  --keep           keep the rig running after the report, until Ctrl-C
  -h, --help       show this help
`;

/**
 * The agent's report interval in the demo (kernel argument
 * zeroboot.agentinterval; the node's default is 60 s). Not shorter: the
 * agent health-checks its zdbs once per report and kills one after 3 failed
 * checks, and under TCG four zdbs starting at once took more than 15 s to
 * answer (5 s killed them all once).
 */
const REPORT_INTERVAL_S = 15;
/** How long the demo waits past the first report for one in which every zdb answers. */
const ZDB_SETTLE_MS = 90_000;

function zdbsHealthy(report: Record<string, unknown>): boolean {
  // Blank disks become pools (and get their zdbs) after the first report.
  if (Array.isArray(report.disks) && report.disks.some((d) => (d as { state?: unknown }).state === 'preparing')) return false;
  const zdbs = report.zdbs;
  return !Array.isArray(zdbs) || zdbs.every((z) => (z as { healthy?: unknown }).healthy === true);
}

/** The demo's result; --json prints it as is. */
export interface DemoResult {
  profile: string;
  vm: { name: string; macs: string[]; bootMac: string };
  up: { seconds: number; ip: string; mac: string };
  timeline: { time: string; kind: string; detail?: Record<string, unknown>; reason?: string }[];
  /** Seconds from QEMU start until the server held the node's first signed report. */
  firstReportSeconds?: number;
  node?: NodeView;
  /** Why there is no node report (an image without the agent). */
  noReport?: string;
  /** The node made to fail (--broken) and the cause the server named. */
  broken?: { mac: string; cause?: string };
}

export class DemoError extends Error {
  constructor(message: string) {
    super(`demo: ${message}`);
    this.name = 'DemoError';
  }
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function demoCommand(argv: string[]): Promise<number> {
  const p = parseCommand('demo', argv, { profile: { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' }, json: { type: 'boolean' }, broken: { type: 'boolean' }, 'dashboard-port': { type: 'string' } });
  if (p.values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`demo: unexpected argument "${p.positionals[0]}"`);
  const profileName = stringOpt(p, 'profile') ?? 'small-bios';
  const timeoutMs = (intOpt(p, 'demo', 'timeout', 10, 86_400) ?? 300) * 1000;
  const dashboardPort = intOpt(p, 'demo', 'dashboard-port', 0, 65535);
  if (process.getuid?.() !== 0) throw new UsageError('demo: needs root to create a network namespace (run it with sudo)');

  const { buildImage, parseImageYaml } = await import('../../image/index.ts');
  const { startRig, loadProfile, instanceOf } = await import('../../qemu/index.ts');
  const { untilSignal } = await import('./serve.ts');
  const json = p.values.json === true;
  // With --json, stdout carries the one document; the progress goes to stderr.
  const say = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
  const step = (s: string) => say(`\n== ${s}`);
  const started = Date.now();
  const secs = () => ((Date.now() - started) / 1000).toFixed(1);

  // Fail on a bad profile name before anything slow starts.
  const hw = await loadProfile(profileName);
  // Secure Boot firmware runs only signed code: the signed chain, not iPXE (the image must carry shim and GRUB).
  const secureBoot = hw.firmware === 'uefi-secureboot';
  const specOf = async (name: string) => {
    const file = path.join(ROOT, `images/${name}.yaml`);
    return { name, file, spec: parseImageYaml(await readFile(file, 'utf8'), file) };
  };
  let image = await specOf('node');
  if (secureBoot && !image.spec.secureBoot) image = await specOf('default');
  const hasAgent = image.spec.node?.commands.includes('agent') ?? false;

  step(`image: images/${image.name}.yaml -> images/${image.name}`);
  const imageDir = path.join(ROOT, `images/${image.name}`);
  const manifest = await buildImage(image.spec, {
    outDir: imageDir,
    progress: process.stderr.isTTY ? (msg: string) => process.stderr.write(`  ${msg}\n`) : undefined,
  });
  for (const [name, a] of Object.entries(manifest.artifacts)) say(`  ${name.padEnd(14)} ${String(a.size).padStart(9)} bytes  sha256 ${a.sha256.slice(0, 16)}…`);

  step('network and server');
  const logDir = path.join(tmpdir(), `zeroboot-demo-${process.pid}`);
  // The agent reports after the network is up: a node that powered off once up would never report.
  const poweroff = !p.values.keep && !hasAgent;
  // A short report interval: the first report goes out as the zdbs start, the next ones show them healthy.
  const kernelArgs: Record<string, string | number> | undefined = poweroff ? { 'zeroboot.after': 'poweroff' } : hasAgent ? { 'zeroboot.agentinterval': REPORT_INTERVAL_S } : undefined;
  // The broken node is the profile's first instance (booted first), so its MAC is known before the server starts.
  const brokenMac = p.values.broken ? instanceOf(hw, 0).bootMac : undefined;
  const rig = await startRig({
    imageDir, dhcp: 'full', logDir, kernelArgs, secureBoot, handleSignals: true,
    // The token makes the dashboard's URL carry it, as on a real management listener.
    serverConfig: { server: { management: { auth: 'token' } }, ...(brokenMac ? { machines: [{ mac: brokenMac, profile: 'broken' }] } : {}) },
    ...(brokenMac ? { extraProfiles: [{ name: 'broken', kernel: 'image/missing-vmlinuz', initrd: 'image/initramfs.img', args: { console: 'ttyS0' } }] } : {}),
  });
  try {
    say(`  namespace ${rig.ns.name}, server ${rig.serverUrl}, ${rig.accel} (${rig.accelReason})`);
    say(`  dashboard ${rig.dashboardUrl} (inside the namespace: ip netns exec ${rig.ns.name} chromium <url>)`);
    if (dashboardPort !== undefined) say(`  dashboard on this host: ${await rig.forwardDashboard(dashboardPort)}`);
    let broken: DemoResult['broken'];
    if (brokenMac) {
      step(`broken node: ${profileName} with a missing kernel (made to fail)`);
      const [bad] = await rig.boot(profileName);
      say(`  ${bad.name}  MAC ${brokenMac}`);
      await rig.waitForEvent(brokenMac, 'http.error', timeoutMs);
      // iPXE prints why it stopped right after the 404: give its console a moment to show it.
      await bad.console.waitFor(/No such file|Could not boot|not found/i, 15_000).catch(() => undefined);
      const why = await rig.api<{ stage: string; cause?: { title: string; explanation: string }; console?: string[] }>(`/machines/${encodeURIComponent(brokenMac)}/why`);
      say(`  why: ${why?.cause ? `${why.cause.title}: ${why.cause.explanation}` : `no cause found (stage ${why?.stage})`}`);
      for (const l of why?.console?.slice(-3) ?? []) say(`    console: ${l.slice(0, 140)}`);
      broken = { mac: brokenMac, ...(why?.cause ? { cause: why.cause.title } : {}) };
      // One guest at a time: the failed node is stopped before the good one boots.
      await bad.stop();
    }

    step(`node: ${profileName} PXE-boots (QEMU, console in ${logDir})`);
    const [vm] = await rig.boot(profileName);
    const mac = vm.instance.bootMac;
    say(`  ${vm.name}  MAC ${vm.macs.map((m) => (m === mac ? `${m} (boot NIC)` : m)).join(', ')}`);
    vm.console.onLine((line) => {
      const l = line.trim();
      if (/^(ZEROBOOT-|zeroboot: |iPXE |net\d: |NBP filename|Fetching Netboot|Welcome to GRUB)/.test(l)) say(`  [console ${secs()} s] ${l.slice(0, 160)}`);
    });
    const up = await Promise.race([
      vm.console.waitFor(/ZEROBOOT-UP ip=(\S+) mac=(\S+)|ZEROBOOT-FAIL[^\n]*/, timeoutMs),
      vm.console.exited.then(() => null),
    ]).catch((e: Error) => {
      throw new DemoError(`the node did not come up: ${e.message.split('\n')[0]} (console log ${vm.console.path})`);
    });
    if (!up || up[0].startsWith('ZEROBOOT-FAIL')) throw new DemoError(`the node did not come up: ${up ? up[0] : 'QEMU stopped'} (console log ${vm.console.path})`);
    const upSeconds = (Date.now() - vm.startedAt) / 1000;
    say(`  up after ${upSeconds.toFixed(1)} s from QEMU start: ${up[0]}`);

    step(`timeline for ${mac} (GET ${rig.apiUrl}/machines/${mac}, the management API inside the namespace)`);
    const tl = await rig.timeline(mac);
    for (const e of tl?.timeline ?? []) {
      const detail = e.detail ? Object.entries(e.detail).filter(([k]) => ['ip', 'bootfile', 'file', 'path', 'profile', 'status', 'bytes', 'class'].includes(k)) : [];
      say(`  ${e.time}  ${e.kind.padEnd(14)} ${detail.map(([k, v]) => `${k}=${v}`).join(' ')}${e.reason ? `  reason: ${e.reason}` : ''}`);
    }
    const result: DemoResult = {
      profile: profileName,
      vm: { name: vm.name, macs: vm.macs, bootMac: mac },
      up: { seconds: Number(upSeconds.toFixed(1)), ip: up[1], mac: up[2] },
      timeline: (tl?.timeline ?? []).map((e) => ({ time: e.time, kind: e.kind, ...(e.detail ? { detail: e.detail } : {}), ...(e.reason ? { reason: e.reason } : {}) })),
      ...(broken ? { broken } : {}),
    };

    if (hasAgent) {
      const remaining = Math.max(1000, vm.startedAt + timeoutMs - Date.now());
      const noReport = (e: Error): never => {
        throw new DemoError(`no signed report from ${mac}: ${e.message.split('\n')[0]} (console log ${vm.console.path})`);
      };
      let detail = await rig.waitForReport(vm, remaining).catch(noReport);
      // The server's clock stamped firstSeen when it accepted the first report: the same clock as vm.startedAt.
      const seconds = (Date.parse(detail.firstSeen) - vm.startedAt) / 1000;
      result.firstReportSeconds = Number(seconds.toFixed(1));
      say(`  first signed report accepted ${seconds.toFixed(1)} s after QEMU start`);
      // zdbs still starting when the first report left: show a later report once they answer, within a bound.
      const settleUntil = Date.now() + ZDB_SETTLE_MS;
      while (!zdbsHealthy(detail.report) && Date.now() < settleUntil) {
        const next = await rig.waitForReport(vm, Math.max(1000, settleUntil - Date.now()), { from: vm.console.mark() }).catch(() => undefined);
        if (!next) break;
        detail = next;
      }
      step(`node report ${detail.reports} (GET ${rig.apiUrl}/nodes/${detail.nodeId}: signed by the node, verified by the server), accepted ${((Date.parse(detail.lastReport) - vm.startedAt) / 1000).toFixed(1)} s after QEMU start`);
      result.node = nodeView(detail);
      for (const l of renderNodeView(result.node)) say(l);
    } else {
      result.noReport = `images/${image.name} has no node agent`;
      say(`\n  no node report: ${result.noReport}`);
    }
    if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');

    if (p.values.keep) {
      say(`\nThe node stays up; its console is ${vm.console.path}. Enter the network with: ip netns exec ${rig.ns.name} bash. Ctrl-C stops.`);
      await untilSignal();
    } else if (poweroff) {
      // unref: a pending wait must not keep the process alive after teardown.
      await Promise.race([vm.console.exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
      say(`  the node powered off (zeroboot.after=poweroff); ${secs()} s in all`);
    } else {
      say(`  the node is stopped with the rig (its agent keeps reporting until then); ${secs()} s in all`);
    }
    return 0;
  } finally {
    await rig.stop();
    say(`\n== torn down: namespace ${rig.ns.name}, QEMU, server and taps (logs in ${logDir})`);
  }
}
