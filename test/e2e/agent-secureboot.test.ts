// The agent on a Secure Boot node (issue 12): secureboot-uefi (OVMF with
// Secure Boot enforced and Microsoft's keys enrolled) PXE-boots the node
// image (images/node.yaml, built with secureBoot) through the signed chain:
// the firmware's PXE fetches shim, shim GRUB, GRUB its per-MAC configuration,
// then Debian's signed kernel and the initramfs, all over our TFTP, never
// iPXE. The agent, told where the server is by GRUB's command line
// (zeroboot.server, as the iPXE script does), sends a signed report the
// server accepts; it says Secure Boot is enabled and matches the profile
// (CPUs, memory within 5%, the NIC's MAC, the disk as a pool of its type).
import test from 'ava';
import { cachedImage } from '../../harness/qemu-image.ts';
import { startRig, type Rig } from '../../qemu/rig.ts';
import { AGENT_MARKERS } from '../../image/init-services.ts';
import { bootToReport, checkInventory, reportOf } from '../helpers/agent-node.ts';

// TCG on a loaded 2-core machine: OVMF's Secure Boot checks, then a 42 MB initramfs over GRUB's TFTP.
const REPORT_MS = 15 * 60_000;

let rig: Rig;
const guestSeconds: string[] = [];

test.before(async (t) => {
  t.timeout(20 * 60_000);
  rig = await startRig({ imageDir: await cachedImage('node'), kvm: 'auto', secureBoot: true, subnet: '10.87.0.0/24', kernelArgs: { 'zeroboot.agentinterval': 5 } });
});

test.after.always(async (t) => {
  for (const line of guestSeconds) t.log(line);
  await rig?.stop();
});

test.serial('secureboot-uefi: the signed chain boots the node image; the signed report says Secure Boot enabled and matches the profile', async (t) => {
  t.timeout(REPORT_MS + 2 * 60_000);
  const { vm, node } = await bootToReport(rig, 'secureboot-uefi', {}, REPORT_MS, guestSeconds);
  t.false(vm.args.some((a) => /romfile=[^,]/.test(a)), 'no iPXE option ROM on a Secure Boot node');
  const log = vm.console.log();
  t.regex(log, /NBP filename is image\/shimx64\.efi/);
  t.regex(log, new RegExp(`Command line: BOOT_IMAGE=/image/vmlinuz .*zeroboot\\.server=${rig.serverUrl.replace(/[.:/]/g, '\\$&')} .*BOOTIF=01-${vm.mac.replace(/:/g, '-')}`));
  t.is(AGENT_MARKERS.start.exec(log)?.[2], rig.serverUrl, 'the agent reports to the URL GRUB gave it');

  const events = (await rig.timeline(vm.mac))!.timeline;
  t.is(events.find((e) => e.kind === 'dhcp.offer')?.detail?.bootfile, 'image/shimx64.efi');
  const done = (file: string) => events.findIndex((e) => e.kind === 'tftp.done' && e.detail?.file === file);
  const chain = [done('image/shimx64.efi'), done('image/grubx64.efi'), events.findIndex((e) => e.kind === 'grub.config'), done('image/vmlinuz'), done('image/initramfs.img')];
  t.true(chain.every((i, k) => i >= 0 && (k === 0 || i > chain[k - 1])), `shim, GRUB, its configuration, kernel, initrd in order (saw ${events.map((e) => `${e.kind}:${e.detail?.file ?? ''}`).join(', ')})`);
  t.false(events.some((e) => e.kind === 'http.script'), 'iPXE never ran');

  const r = reportOf(node);
  t.is(r.inventory.secureBoot, 'enabled', 'the firmware enforced Secure Boot, and the agent read it from efivarfs');
  t.is(r.mac, vm.mac, 'the key is bound to the boot NIC');
  t.is(r.bootMac, vm.mac);
  checkInventory(t, vm, node);
  t.is(r.zdbs.length, 0, 'one SSD and no missing-ssd: no zdb');
  await vm.stop();
});
