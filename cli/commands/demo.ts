// `zeroboot demo`, the main job: build the default image, start a private
// network with the server, PXE-boot a node of the default hardware profile
// under QEMU until the image reports it is up, show what the server recorded
// for it, and tear everything down.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, stringOpt, intOpt, UsageError } from '../args.ts';

export const DEMO_HELP = `Usage: zeroboot demo [options]

Builds the default image (images/default.yaml, into images/default), starts a
private network namespace with 'zeroboot serve' (full DHCP, TFTP, HTTP) and
PXE-boots one QEMU node of the default hardware profile from it: DHCP, the
iPXE script, kernel and initramfs over HTTP, until the image prints
ZEROBOOT-UP. Then it prints the node's boot-event timeline and tears
everything down. Needs root (network namespaces).

With --profile secureboot-uefi the node has Secure Boot on and Microsoft's
keys enrolled, and boots the signed chain instead: the firmware's PXE fetches
shim, shim fetches GRUB, GRUB its configuration, then Debian's signed kernel
and the initramfs over TFTP.

Options:
  --profile NAME   hardware profile to boot (default small-bios)
  --timeout S      give up after S seconds (default 300)
  --keep           keep the rig running after the node is up, until Ctrl-C
  -h, --help       show this help
`;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function demoCommand(argv: string[]): Promise<number> {
  const p = parseCommand('demo', argv, { profile: { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' } });
  if (p.values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`demo: unexpected argument "${p.positionals[0]}"`);
  const profileName = stringOpt(p, 'profile') ?? 'small-bios';
  const timeoutMs = (intOpt(p, 'demo', 'timeout', 10, 86_400) ?? 300) * 1000;
  if (process.getuid?.() !== 0) throw new UsageError('demo: needs root to create a network namespace (run it with sudo)');

  const { buildImage, parseImageYaml } = await import('../../image/index.ts');
  const { startRig, loadProfile } = await import('../../qemu/index.ts');
  const { untilSignal } = await import('./serve.ts');
  const say = (s: string) => process.stdout.write(s + '\n');
  const step = (s: string) => say(`\n== ${s}`);
  const started = Date.now();
  const secs = () => ((Date.now() - started) / 1000).toFixed(1);

  // Fail on a bad profile name before anything slow starts.
  const hw = await loadProfile(profileName);
  // Secure Boot firmware runs only signed code: the signed chain, not iPXE (the default image carries shim and GRUB).
  const secureBoot = hw.firmware === 'uefi-secureboot';

  step('image: images/default.yaml -> images/default');
  const specFile = path.join(ROOT, 'images/default.yaml');
  const imageDir = path.join(ROOT, 'images/default');
  const manifest = await buildImage(parseImageYaml(await readFile(specFile, 'utf8'), specFile), {
    outDir: imageDir,
    progress: process.stderr.isTTY ? (msg: string) => process.stderr.write(`  ${msg}\n`) : undefined,
  });
  for (const [name, a] of Object.entries(manifest.artifacts)) say(`  ${name.padEnd(14)} ${String(a.size).padStart(9)} bytes  sha256 ${a.sha256.slice(0, 16)}…`);

  step('network and server');
  const logDir = path.join(tmpdir(), `zeroboot-demo-${process.pid}`);
  const rig = await startRig({ imageDir, dhcp: 'full', logDir, kernelArgs: p.values.keep ? undefined : { 'zeroboot.after': 'poweroff' }, secureBoot, handleSignals: true });
  try {
    say(`  namespace ${rig.ns.name}, server ${rig.serverUrl}, ${rig.accel} (${rig.accelReason})`);

    step(`node: ${profileName} PXE-boots (QEMU, console in ${logDir})`);
    const [vm] = await rig.boot(profileName);
    say(`  ${vm.name}  MAC ${vm.mac}`);
    vm.console.onLine((line) => {
      const l = line.trim();
      if (/^(ZEROBOOT-|zeroboot: |iPXE |net\d: |NBP filename|Fetching Netboot|Welcome to GRUB)/.test(l)) say(`  [console ${secs()} s] ${l.slice(0, 160)}`);
    });
    const up = await Promise.race([
      vm.console.waitFor(/ZEROBOOT-UP ip=\S+ mac=\S+|ZEROBOOT-FAIL[^\n]*/, timeoutMs),
      vm.console.exited.then(() => null),
    ]);
    if (!up || up[0].startsWith('ZEROBOOT-FAIL')) throw new Error(`demo: the node did not come up: ${up ? up[0] : 'QEMU stopped'} (console log ${vm.console.path})`);
    say(`  up after ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s from QEMU start: ${up[0]}`);

    step(`timeline for ${vm.mac} (GET ${rig.apiUrl}/machines/${vm.mac}, the management API inside the namespace)`);
    const tl = await rig.timeline(vm.mac);
    for (const e of tl?.timeline ?? []) {
      const detail = e.detail ? Object.entries(e.detail).filter(([k]) => ['ip', 'bootfile', 'file', 'path', 'profile', 'status', 'bytes', 'class'].includes(k)) : [];
      say(`  ${e.time}  ${e.kind.padEnd(14)} ${detail.map(([k, v]) => `${k}=${v}`).join(' ')}${e.reason ? `  reason: ${e.reason}` : ''}`);
    }

    if (p.values.keep) {
      say(`\nThe node stays up; its console is ${vm.console.path}. Enter the network with: ip netns exec ${rig.ns.name} bash. Ctrl-C stops.`);
      await untilSignal();
    } else {
      // unref: a pending wait must not keep the process alive after teardown.
      await Promise.race([vm.console.exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
      say(`  the node powered off (zeroboot.after=poweroff); ${secs()} s in all`);
    }
    return 0;
  } finally {
    await rig.stop();
    say(`\n== torn down: namespace ${rig.ns.name}, QEMU, server and taps (logs in ${logDir})`);
  }
}
