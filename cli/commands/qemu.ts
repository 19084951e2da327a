// `zeroboot qemu`: emulated servers from hardware profiles PXE-booting from
// the server in a private network namespace (up), cleaning up after a rig
// that did not stop (down), and the list of profiles (profiles).
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dispatch, parseCommand, stringOpt, intOpt, UsageError } from '../args.ts';
import { untilSignal } from './serve.ts';
import { FIRMWARES, DEFAULT_PROFILES_DIR, listProfiles, loadProfile, instanceOf } from '../../qemu/profile.ts';
import type { Firmware, HwProfile } from '../../qemu/profile.ts';
import { qemuArgs } from '../../qemu/args.ts';
import type { AccelMode } from '../../qemu/kvm-probe.ts';
import type { Rig, Vm } from '../../qemu/rig.ts';
import type { DhcpMode } from '../../boot/config.ts';
import { RIG_STATE_DIR } from '../../qemu/rig-state.ts';
import { GRUB_FILE, missingSignedLoaders, SHIM_FILE } from '../../lib/loaders.ts';

export const QEMU_HELP = `Usage: zeroboot qemu <command> [options]

Commands:
  up <profile>...   start a private network with the server and boot VMs
  down              tear down what a previous 'qemu up' left behind
  profiles          list the hardware profiles

Run 'zeroboot qemu <command> --help' for the options of a command.
`;

export const QEMU_UP_HELP = `Usage: zeroboot qemu up <profile>... [options]

Creates a private network namespace (bridge, IPv6 router advertisements, one
tap per NIC), starts 'zeroboot serve' in it and boots one VM per profile
(TCG unless a probe proves KVM works). Each serial console is logged to a
file; boot markers are printed here. Ctrl-C tears everything down. Needs root.

Options:
  --count N          VMs per profile (default 1)
  --image DIR        a built image (vmlinuz, initramfs.img) for the VMs to boot
  --poweroff         tell the image to power off once it is up (zeroboot.poweroff)
  --dhcp MODE        full (default): the server hands out addresses;
                     proxy: dnsmasq does, the server answers PXE only
  --no-ipxe-rom      boot through the firmware's own PXE instead of QEMU's
                     iPXE ROM (UEFI with virtio NICs: fetches snponly.efi over TFTP)
  --firmware FW      bios | uefi | uefi-secureboot, overriding the profiles
  --secure-boot      UEFI PXE nodes boot the signed chain (shim -> GRUB ->
                     kernel); needs an image built with 'secureBoot: true'.
                     On by default when a VM has uefi-secureboot firmware and
                     the image has shimx64.efi
  --config FILE      server configuration laid over the rig's
  --log-dir DIR      console and server logs (default ${path.join(tmpdir(), 'zeroboot-qemu')})
  --subnet CIDR      the private IPv4 subnet (default 10.77.0.0/24)
  --accel MODE       auto (default) | tcg | kvm
  --until-up         exit once every VM printed ZEROBOOT-UP on its boot NIC
                     (1 if one fails first or comes up on another NIC)
  --timeout S        with --until-up: give up after S seconds (default 300)
  --profiles DIR     hardware profile folder (default ${DEFAULT_PROFILES_DIR})
  --state-dir DIR    where the rig's state is kept for 'qemu down' (default ${RIG_STATE_DIR})
  -h, --help         show this help
`;

export const QEMU_DOWN_HELP = `Usage: zeroboot qemu down [options]

Tears down rigs a previous 'qemu up' left behind: asks a running owner to
stop, kills the recorded QEMU, server and dnsmasq processes by pid, deletes
the network namespace and the work directory.

Options:
  --state-dir DIR    where rig state files are (default ${RIG_STATE_DIR})
  -h, --help         show this help
`;

export const QEMU_PROFILES_HELP = `Usage: zeroboot qemu profiles [options]

Lists the hardware profiles: firmware, CPUs, memory, NICs and disks.

Options:
  --profiles DIR     profile folder (default ${DEFAULT_PROFILES_DIR})
  --json             print the profiles as JSON
  -h, --help         show this help
`;

const MARKER_LINE = /^(ZEROBOOT-[A-Z]+|zeroboot: )/;

function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${+(bytes / 2 ** 30).toFixed(1)}G` : `${Math.round(bytes / 2 ** 20)}M`;
}

export function describeProfile(p: HwProfile): string {
  const nics = p.nics.map((n) => n.model).join('+');
  const disks = p.disks.length === 0 ? 'no disks' : p.disks.map((d) => `${gib(d.sizeBytes)} ${d.type}${d.bus === 'scsi' ? '' : `/${d.bus}`}`).join(', ');
  return `${p.name.padEnd(18)} ${p.firmware.padEnd(15)} ${String(p.cpus).padStart(2)} CPU ${gib(p.memoryMiB * 2 ** 20).padStart(5)}  NICs ${nics}  disks ${disks}`;
}

async function profilesCommand(argv: string[]): Promise<number> {
  const p = parseCommand('qemu profiles', argv, { profiles: { type: 'string' }, json: { type: 'boolean' } });
  if (p.values.help) {
    process.stdout.write(QEMU_PROFILES_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`qemu profiles: unexpected argument "${p.positionals[0]}"`);
  const list = await listProfiles(stringOpt(p, 'profiles') ?? DEFAULT_PROFILES_DIR);
  if (p.values.json) process.stdout.write(JSON.stringify({ profiles: list }, null, 2) + '\n');
  else for (const prof of list) process.stdout.write(describeProfile(prof) + '\n');
  return 0;
}

async function downCommand(argv: string[]): Promise<number> {
  const p = parseCommand('qemu down', argv, { 'state-dir': { type: 'string' } });
  if (p.values.help) {
    process.stdout.write(QEMU_DOWN_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`qemu down: unexpected argument "${p.positionals[0]}"`);
  if (process.getuid?.() !== 0) throw new UsageError('qemu down: needs root to delete network namespaces (run it with sudo)');
  const { readRigStates, cleanupRig } = await import('../../qemu/rig-state.ts');
  const states = await readRigStates(stringOpt(p, 'state-dir') ?? RIG_STATE_DIR);
  if (states.length === 0) {
    process.stdout.write('qemu down: no rig to tear down\n');
    return 0;
  }
  for (const { file, state } of states) {
    const done = await cleanupRig(file, state);
    process.stdout.write(`qemu down: ${state.namespace}: ${done.length > 0 ? done.join(', ') : 'nothing was left running'}\n`);
  }
  return 0;
}

const UP_OPTIONS = {
  count: { type: 'string' },
  image: { type: 'string' },
  poweroff: { type: 'boolean' },
  dhcp: { type: 'string' },
  'no-ipxe-rom': { type: 'boolean' },
  'secure-boot': { type: 'boolean' },
  firmware: { type: 'string' },
  config: { type: 'string' },
  'log-dir': { type: 'string' },
  subnet: { type: 'string' },
  accel: { type: 'string' },
  'until-up': { type: 'boolean' },
  timeout: { type: 'string' },
  profiles: { type: 'string' },
  'state-dir': { type: 'string' },
} as const;

/** Resolves when every VM has shown ZEROBOOT-UP; rejects when one fails or exits first. */
function allUp(vms: Vm[], timeoutMs: number): Promise<void> {
  return Promise.all(
    vms.map(async (vm) => {
      const m = await Promise.race([vm.console.waitFor(/ZEROBOOT-UP[^\n]*\n|ZEROBOOT-FAIL reason=\S+/, timeoutMs), vm.console.exited.then(() => null)]);
      if (!m || m[0].startsWith('ZEROBOOT-FAIL')) throw new Error(`${vm.name}: ${m ? m[0] : 'stopped before ZEROBOOT-UP'} (console: ${vm.console.path})`);
      // Up is up on the NIC the profile boots from (BOOTIF), not on whichever NIC got an address.
      const mac = / mac=(\S+)/.exec(m[0])?.[1];
      if (mac && mac !== vm.instance.bootMac) throw new Error(`${vm.name}: came up on ${mac}, not on its boot NIC ${vm.instance.bootMac} (console: ${vm.console.path})`);
    }),
  ).then(() => undefined);
}

async function upCommand(argv: string[]): Promise<number> {
  const p = parseCommand('qemu up', argv, UP_OPTIONS);
  if (p.values.help) {
    process.stdout.write(QEMU_UP_HELP);
    return 0;
  }
  if (p.positionals.length === 0) throw new UsageError("qemu up: give at least one profile (see 'zeroboot qemu profiles')");
  const count = intOpt(p, 'qemu up', 'count', 1, 32) ?? 1;
  const timeoutS = intOpt(p, 'qemu up', 'timeout', 1, 86_400) ?? 300;
  const dhcp = stringOpt(p, 'dhcp') ?? 'full';
  if (dhcp !== 'full' && dhcp !== 'proxy') throw new UsageError(`qemu up: --dhcp must be full or proxy, got "${dhcp}"`);
  const accel = stringOpt(p, 'accel') ?? 'auto';
  if (!['auto', 'tcg', 'kvm'].includes(accel)) throw new UsageError(`qemu up: --accel must be auto, tcg or kvm, got "${accel}"`);
  const firmware = stringOpt(p, 'firmware');
  if (firmware !== undefined && !(FIRMWARES as readonly string[]).includes(firmware)) throw new UsageError(`qemu up: --firmware must be one of ${FIRMWARES.join(', ')}, got "${firmware}"`);
  const noIpxeRom = p.values['no-ipxe-rom'] === true;
  const profilesDir = stringOpt(p, 'profiles') ?? DEFAULT_PROFILES_DIR;
  const profiles: HwProfile[] = [];
  for (const name of p.positionals) profiles.push(await loadProfile(name, profilesDir));
  // Catch impossible combinations (--no-ipxe-rom on BIOS) before anything starts.
  for (const prof of profiles) {
    const inst = instanceOf(prof, 0);
    qemuArgs({ instance: inst, taps: prof.nics.map(() => 'tap'), disks: prof.disks.map((spec) => ({ path: 'disk', spec })), varsFile: 'vars', accel: 'tcg', noIpxeRom, firmware: firmware as Firmware | undefined });
  }
  const image = stringOpt(p, 'image');
  if (image) {
    await readFile(path.join(image, 'vmlinuz')).catch(() => {
      throw new UsageError(`qemu up: ${image} holds no vmlinuz (build one with 'zeroboot image build')`);
    });
  }
  // Secure Boot firmware refuses iPXE: those VMs need the signed chain, which the image must carry.
  const wantsSigned = firmware === 'uefi-secureboot' || (firmware === undefined && profiles.some((prof) => prof.firmware === 'uefi-secureboot'));
  const imageSigned = image !== undefined && missingSignedLoaders(image).length === 0;
  if (p.values['secure-boot'] === true && !imageSigned) throw new UsageError(`qemu up: --secure-boot needs --image with ${SHIM_FILE} and ${GRUB_FILE} (build it with 'secureBoot: true')`);
  const secureBoot = p.values['secure-boot'] === true || (wantsSigned && imageSigned);
  const configFile = stringOpt(p, 'config');
  let serverConfig: string | undefined;
  if (configFile) {
    serverConfig = await readFile(configFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`qemu up: cannot read ${configFile}: ${e.code ?? e.message}`);
    });
  }
  if (process.getuid?.() !== 0) throw new UsageError('qemu up: needs root to create a network namespace (run it with sudo)');

  const { startRig } = await import('../../qemu/rig.ts');
  const logDir = path.resolve(stringOpt(p, 'log-dir') ?? path.join(tmpdir(), 'zeroboot-qemu'));
  const stateDir = stringOpt(p, 'state-dir') ?? RIG_STATE_DIR;
  const say = (s: string) => process.stdout.write(s + '\n');
  let rig: Rig | undefined;
  try {
    rig = await startRig({
      imageDir: image ? path.resolve(image) : undefined,
      dhcp: dhcp as DhcpMode,
      kvm: accel as AccelMode,
      logDir,
      subnet: stringOpt(p, 'subnet'),
      profilesDir,
      serverConfig,
      kernelArgs: p.values.poweroff ? { 'zeroboot.poweroff': null } : undefined,
      secureBoot,
      stateFile: path.join(stateDir, `rig-${process.pid}.json`),
      handleSignals: false,
    });
    say(`rig: namespace ${rig.ns.name} (enter it with: ip netns exec ${rig.ns.name} bash)`);
    say(`server: ${rig.serverUrl}  dhcp ${dhcp}  log ${path.join(logDir, 'server.log')}`);
    say(`accel: ${rig.accel} (${rig.accelReason})`);
    say(`timeline of a VM: ip netns exec ${rig.ns.name} curl -s ${rig.apiUrl}/machines/<mac>`);
    if (!image) say('no --image: the VMs get their boot script, then fail to download a kernel');
    if (wantsSigned && !secureBoot) say(`Secure Boot VMs need an image with ${SHIM_FILE} and ${GRUB_FILE} (built with 'secureBoot: true'); the firmware will refuse iPXE`);
    const vms: Vm[] = [];
    for (const prof of profiles) vms.push(...(await rig.boot(prof, { count, noIpxeRom, firmware: firmware as Firmware | undefined })));
    for (const vm of vms) {
      say(`${vm.name.padEnd(20)} ${vm.macs.map((m) => (m === vm.instance.bootMac && vm.macs.length > 1 ? `${m}(boot)` : m)).join(',')}  console ${vm.console.path}`);
      vm.console.onLine((line) => {
        if (MARKER_LINE.test(line.trim())) say(`[${vm.name}] ${line.trim()}`);
      });
      void vm.console.exited.then((e) => say(`[${vm.name}] QEMU exited (${e.signal ? `signal ${e.signal}` : `code ${e.exitCode}`})`));
    }
    if (p.values['until-up']) {
      const stop = untilSignal().then((sig) => {
        throw new Error(`interrupted (${sig})`);
      });
      await Promise.race([allUp(vms, timeoutS * 1000), stop]);
      say('all VMs are up');
      return 0;
    }
    say('Ctrl-C tears everything down.');
    await untilSignal();
    return 0;
  } finally {
    if (rig) {
      await rig.stop();
      say(`torn down: namespace ${rig.ns.name}, its processes and taps; logs stay in ${logDir}`);
    }
  }
}

export function qemuCommand(argv: string[]): Promise<number> {
  return dispatch('qemu', argv, { up: upCommand, down: downCommand, profiles: profilesCommand }, QEMU_HELP);
}
