// QEMU nodes PXE-boot the default image from our server in a private
// namespace, under TCG: BIOS and UEFI through QEMU's iPXE ROM, UEFI through
// the firmware's own PXE (snponly.efi over our TFTP), proxy mode next to a
// dnsmasq that hands out the addresses, and a node whose kernel download
// fails. Never more than two VMs run at once (two cores).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { readFile } from 'node:fs/promises';
import { startRig } from '../../qemu/rig.ts';
import type { Rig, Vm } from '../../qemu/rig.ts';
import { instanceOf, loadProfile } from '../../qemu/profile.ts';
import type { BootEvent, BootEventKind } from '../../boot/timeline.ts';
import { defaultImage } from '../../harness/qemu-image.ts';

const UP = /ZEROBOOT-UP ip=([0-9.]+) mac=([0-9a-f:]{17})/;
const BOOT_MS = 150_000;
const POWEROFF = { 'zeroboot.poweroff': null };

let image = '';
let rig: Rig | undefined;
/** The MAC the broken profile is pinned to: multi-nic-bios instance 0. */
let brokenMac = '';

test.before(async () => {
  image = await defaultImage();
  brokenMac = instanceOf(await loadProfile('multi-nic-bios'), 0).macs[0];
  rig = await startRig({
    imageDir: image,
    kvm: 'auto',
    kernelArgs: POWEROFF,
    // One machine is pinned to a profile whose kernel does not exist.
    serverConfig: {
      profiles: [
        { name: 'zos', kernel: 'image/vmlinuz', initrd: 'image/initramfs.img', args: { console: 'ttyS0', ...POWEROFF } },
        { name: 'broken', kernel: 'image/no-such-vmlinuz', initrd: 'image/initramfs.img', args: { console: 'ttyS0' } },
      ],
      machines: [{ mac: brokenMac, profile: 'broken' }],
    },
  });
});

test.after.always(async () => {
  await rig?.stop();
});

const STAGES: BootEventKind[] = ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'http.script', 'http.kernel', 'http.initrd'];

/** Index of the first event of each kind after the previous one: the stages happened in order. */
function assertStages(t: ExecutionContext, events: BootEvent[], stages: BootEventKind[], who: string): void {
  let at = -1;
  for (const kind of stages) {
    const i = events.findIndex((e, n) => n > at && e.kind === kind);
    t.true(i > at, `${who}: ${kind} after ${stages[stages.indexOf(kind) - 1] ?? 'start'} (saw ${events.map((e) => e.kind).join(', ')})`);
    if (i > at) at = i;
  }
}

/** Waits for the image's marker, then for the power-off, and returns the marker's address. */
async function bootsUp(t: ExecutionContext, vm: Vm): Promise<string> {
  const m = await vm.console.waitFor(UP, BOOT_MS);
  t.is(m[2], vm.mac, `${vm.name} came up on the NIC it booted from`);
  const exit = await vm.console.exited;
  t.is(exit.exitCode, 0, `${vm.name} powered off`);
  t.log(`${vm.name}: QEMU start to ZEROBOOT-UP ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s (incl. power-off)`);
  return m[1];
}

test.serial('BIOS and UEFI nodes boot at once through iPXE to the marker, with distinct leases and every stage in the timeline', async (t) => {
  // Its own deadlines (BOOT_MS per wait), not ava's 5 minutes between results: guest files run two at a time.
  t.timeout(BOOT_MS + 2 * 60_000);
  const [bios] = await rig!.boot('small-bios');
  const [uefi] = await rig!.boot('storage-uefi');
  const [ipBios, ipUefi] = await Promise.all([bootsUp(t, bios), bootsUp(t, uefi)]);
  t.not(ipBios, ipUefi, 'distinct leases');
  for (const [vm, ip] of [[bios, ipBios], [uefi, ipUefi]] as const) {
    const tl = (await rig!.timeline(vm.mac))!;
    assertStages(t, tl.timeline, STAGES, vm.name);
    t.is(tl.lease?.ip, ip, `${vm.name}: the lease the server holds is the address the node reports`);
    const ack = tl.timeline.find((e) => e.kind === 'dhcp.ack')!;
    t.is(ack.detail?.bootfile, `${rig!.serverUrl}/boot.ipxe`, `${vm.name}: iPXE was handed the script, not a binary`);
    const kernel = tl.timeline.find((e) => e.kind === 'http.kernel')!;
    t.regex(String(kernel.detail?.path), /image\/vmlinuz/);
    t.is(tl.timeline.filter((e) => e.kind === 'http.error').length, 0);
  }
  const script = (await rig!.timeline(uefi.mac))!.timeline.find((e) => e.kind === 'http.script')!;
  t.is(script.detail?.arch, 'x86_64', 'the UEFI node asked as x86_64');
});

test.serial('UEFI without QEMU\'s iPXE ROM: firmware PXE gets snponly.efi over our TFTP, then the script over HTTP', async (t) => {
  t.timeout(2 * BOOT_MS + 60_000);
  const [vm] = await rig!.boot('storage-uefi', { noIpxeRom: true });
  t.true(vm.args.some((a) => a.includes('romfile=,')));
  await vm.console.waitFor(/NBP filename is snponly\.efi/, BOOT_MS);
  await bootsUp(t, vm);
  const events = (await rig!.timeline(vm.mac))!.timeline;
  assertStages(t, events, ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'tftp.request', 'tftp.done', 'dhcp.discover', 'dhcp.ack', 'http.script', 'http.kernel', 'http.initrd'], vm.name);
  const firstOffer = events.find((e) => e.kind === 'dhcp.offer')!;
  t.is(firstOffer.detail?.bootfile, 'snponly.efi');
  const done = events.find((e) => e.kind === 'tftp.done')!;
  t.is(done.detail?.file, 'snponly.efi');
  t.is(done.detail?.bytes, (await readFile('/usr/lib/ipxe/snponly.efi')).length);
});

test.serial('a node whose kernel download fails retries as the script says; the timeline shows why', async (t) => {
  t.timeout(3 * BOOT_MS + 60_000);
  const [vm] = await rig!.boot('multi-nic-bios');
  t.is(vm.mac, brokenMac);
  await vm.console.waitFor(`zeroboot: ${vm.mac} boots profile broken`, BOOT_MS);
  for (const line of ['zeroboot: kernel attempt 1 failed, retrying', 'zeroboot: kernel attempt 2 failed, retrying', 'zeroboot: kernel download failed', 'zeroboot: download failed from', 'zeroboot: rebooting in 30 seconds']) {
    await vm.console.waitFor(line, 60_000);
  }
  t.is(vm.console.log().match(/no-such-vmlinuz\.\.\. (No such file|Error)/g)?.length, 3, 'three attempts');
  const errors = (await rig!.timeline(vm.mac))!.timeline.filter((e) => e.kind === 'http.error');
  t.is(errors.length, 3);
  for (const e of errors) {
    t.is(e.detail?.status, 404);
    t.regex(e.reason ?? '', /not found: \/image\/no-such-vmlinuz/);
  }
  t.false(vm.console.log().includes('ZEROBOOT-INIT'));
  await vm.stop();
});

test.serial('proxy mode: dnsmasq in the namespace hands out the addresses, our server the boot; BIOS and firmware-PXE UEFI', async (t) => {
  t.timeout(3 * BOOT_MS + 2 * 60_000);
  const proxy = await startRig({ imageDir: image, dhcp: 'proxy', kvm: 'auto', kernelArgs: POWEROFF, subnet: '10.78.0.0/24' });
  t.teardown(() => proxy.stop());
  const [bios] = await proxy.boot('small-bios');
  const [uefi] = await proxy.boot('storage-uefi', { noIpxeRom: true });
  const ips = await Promise.all([bootsUp(t, bios), bootsUp(t, uefi)]);
  t.not(ips[0], ips[1]);
  const dnsmasqLog = await readFile(`${proxy.logDir}/dnsmasq.log`, 'utf8');
  for (const [vm, ip] of [[bios, ips[0]], [uefi, ips[1]]] as const) {
    t.regex(ip, /^10\.78\.0\.(1\d\d|2[0-4]\d)$/);
    t.true(dnsmasqLog.includes(`DHCPACK(br0) ${ip} ${vm.mac}`), `dnsmasq leased ${ip} to ${vm.mac}`);
    const tl = (await proxy.timeline(vm.mac))!;
    t.is(tl.lease, undefined, 'our server leased nothing');
    assertStages(t, tl.timeline, ['dhcp.offer', 'http.script', 'http.kernel', 'http.initrd'], vm.name);
    t.false(tl.timeline.some((e) => (e.kind === 'dhcp.offer' || e.kind === 'dhcp.ack') && e.detail?.ip !== undefined && e.detail.ip !== '0.0.0.0'), 'no address in our answers');
  }
  t.regex(uefi.console.log(), /NBP filename is snponly\.efi[\s\S]*NBP file downloaded successfully/);
  // The server holds no lease in proxy mode; the TFTP transfer still lands on
  // the machine's timeline because the server finds the MAC in its ARP table.
  const uefiTl = (await proxy.timeline(uefi.mac))!;
  assertStages(t, uefiTl.timeline, ['dhcp.offer', 'tftp.request', 'tftp.done', 'http.script', 'http.kernel'], uefi.name);
  t.is(uefiTl.timeline.find((e) => e.kind === 'tftp.done')?.detail?.file, 'snponly.efi');
});
