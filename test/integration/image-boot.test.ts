// Boots a built image directly (QEMU -kernel/-initrd, TCG) and checks the
// markers its /init prints: no NIC, DHCP from a real dnsmasq on a private
// bridge with the NIC chosen by BOOTIF, and a DHCP failure; each run powers
// off by itself (zeroboot.poweroff / zeroboot.after=poweroff).
import test from 'ava';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../image/build.ts';
import type { ImageManifest } from '../../image/build.ts';
import { MARKERS } from '../../image/init.ts';
import { Netns } from '../helpers/netns.ts';
import { testImageSpec, TEST_CACHE_DIR } from '../helpers/image-kernel.ts';

let dir = '';
let zstdDir = '';
let manifest: ImageManifest;
const namespaces: Netns[] = [];
const children: ChildProcess[] = [];

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zb-image-boot-'));
  manifest = await buildImage(testImageSpec(), { cacheDir: TEST_CACHE_DIR, outDir: dir });
  // The no-NIC run boots the zstd variant, so both compressions are booted.
  zstdDir = join(dir, 'zstd');
  await buildImage(testImageSpec({ compression: 'zstd' }), { cacheDir: TEST_CACHE_DIR, outDir: zstdDir });
});

test.after.always(async () => {
  for (const c of children) if (c.pid && c.exitCode === null) c.kill('SIGKILL');
  for (const ns of namespaces) await ns.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function qemuArgs(append: string, nics: string[], image = dir): string[] {
  return [
    '-accel', 'tcg', '-m', '256', '-nographic', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-kernel', join(image, 'vmlinuz'), '-initrd', join(image, 'initramfs.img'), '-append', append,
    ...nics,
  ];
}

/** Collects the console until QEMU exits (the guest powers off) or the time runs out. */
function console(child: ChildProcess, timeoutMs = 150_000): Promise<{ output: string; code: number | null }> {
  children.push(child);
  return new Promise((resolve) => {
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ output, code });
    });
  });
}

async function privateLan(): Promise<Netns> {
  const ns = await Netns.create('zbimg');
  namespaces.push(ns);
  await ns.bridge('br0', '10.77.0.1/24');
  return ns;
}

async function tap(ns: Netns, name: string): Promise<void> {
  await ns.ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
  await ns.ip('link', 'set', name, 'master', 'br0');
  await ns.ip('link', 'set', name, 'up');
}

test.serial('no NIC (zstd initramfs): ZEROBOOT-FAIL reason=no-nic, then power off', async (t) => {
  const run = await console(spawn('qemu-system-x86_64', qemuArgs('console=ttyS0 zeroboot.poweroff', ['-nic', 'none'], zstdDir), { stdio: ['ignore', 'pipe', 'pipe'] }));
  const init = run.output.match(MARKERS.init);
  t.truthy(init, run.output.slice(-2000));
  t.is(init![1], manifest.kernel.release);
  t.is(init![2], 'test');
  const fail = run.output.match(MARKERS.fail);
  t.truthy(fail, run.output.slice(-2000));
  t.is(fail![1], 'no-nic');
  t.notRegex(run.output, /ZEROBOOT-UP/);
  t.regex(run.output, /reboot: Power down/);
  t.is(run.code, 0);
});

test.serial('two NICs (e1000, virtio-net): BOOTIF picks the second, dnsmasq leases it, ZEROBOOT-UP', async (t) => {
  const ns = await privateLan();
  await tap(ns, 'tap0');
  await tap(ns, 'tap1');
  const dnsmasq = ns.spawn('dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces', '--no-ping',
    '--dhcp-range=10.77.0.50,10.77.0.99,1h', `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, '--log-facility=-', '--log-dhcp',
  ]);
  let dnsLog = '';
  dnsmasq.stdout!.on('data', (d) => (dnsLog += d));
  dnsmasq.stderr!.on('data', (d) => (dnsLog += d));
  const e1000Mac = '52:54:00:7a:00:01';
  const virtioMac = '52:54:00:7a:00:02';
  const nics = [
    '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `e1000,netdev=n0,mac=${e1000Mac}`,
    '-netdev', 'tap,id=n1,ifname=tap1,script=no,downscript=no', '-device', `virtio-net-pci,netdev=n1,mac=${virtioMac}`,
  ];
  const run = await console(ns.spawn('qemu-system-x86_64', qemuArgs(`console=ttyS0 zeroboot.after=poweroff BOOTIF=01-${virtioMac.replace(/:/g, '-')}`, nics)));
  const up = run.output.match(MARKERS.up);
  t.truthy(up, run.output.slice(-3000));
  t.is(up![2], virtioMac);
  t.regex(up![1], /^10\.77\.0\.(5[0-9]|[6-9][0-9])$/);
  // The address the guest reports is the one dnsmasq acknowledged to that MAC.
  t.regex(dnsLog, new RegExp(`DHCPACK\\(br0\\) ${up![1].replace(/\./g, '\\.')} ${virtioMac}`), dnsLog);
  t.notRegex(dnsLog, new RegExp(`DHCPACK\\(br0\\) \\S+ ${e1000Mac}`));
  t.notRegex(run.output, /insmod .* failed/);
  t.is(run.code, 0);
});

test.serial('NIC with carrier but no DHCP server: ZEROBOOT-FAIL reason=dhcp-failed with its MAC', async (t) => {
  const ns = await privateLan();
  await tap(ns, 'tap0');
  const mac = '52:54:00:7a:00:03';
  const nics = ['-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', `e1000,netdev=n0,mac=${mac}`];
  const run = await console(ns.spawn('qemu-system-x86_64', qemuArgs('console=ttyS0 zeroboot.poweroff', nics)));
  const fail = run.output.match(MARKERS.fail);
  t.truthy(fail, run.output.slice(-3000));
  t.is(fail![1], 'dhcp-failed');
  t.regex(fail![2], new RegExp(`if=eth0 mac=${mac}`));
  t.notRegex(run.output, /ZEROBOOT-UP/);
  t.is(run.code, 0);
});
