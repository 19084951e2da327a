// What the agent reports from two more hardware profiles (issue 12), one
// guest at a time in one rig:
//   storage-uefi (UEFI, 2 NICs, 1 SSD + 4 HDD on virtio-scsi): the report
//     matches the profile, each disk became a pool of its profile type, and
//     the four HDD pools run four zdbs that answer PING (health in the
//     report) and accept a connection from the host side;
//   multi-nic-bios (3 NICs of two models): the report names the NIC the
//     node booted from (BOOTIF), binds the key to it, and that NIC holds the
//     address DHCP gave while the other two hold none;
//   nvme-uefi (NVMe SSD, 2 SATA HDDs, an e1000e with PXE off first and the
//     virtio boot NIC second): the report matches the profile, names the
//     second NIC as the boot NIC, shows both NICs with their links up, and
//     the two HDD pools run two zdbs.
// The UEFI profiles report Secure Boot as disabled (OVMF without enrolled keys).
import test from 'ava';
import { cachedImage } from '../../harness/qemu-image.ts';
import { startRig, type Rig } from '../../qemu/rig.ts';
import { bootToReport, checkInventory, guestDisk, reportOf, waitForNode } from '../helpers/agent-node.ts';

// TCG on a loaded 2-core machine: a 42 MB initramfs through iPXE (UEFI is slower), Node, the agent's bring-up.
const REPORT_MS = 12 * 60_000;

let rig: Rig;
const guestSeconds: string[] = [];

test.before(async (t) => {
  t.timeout(20 * 60_000);
  rig = await startRig({ imageDir: await cachedImage('node'), kvm: 'auto', kernelArgs: { 'zeroboot.agentinterval': 5 } });
});

test.after.always(async (t) => {
  for (const line of guestSeconds) t.log(line);
  await rig?.stop();
});

test.serial('storage-uefi: the report matches the profile; 1 SSD + 4 HDD pools give 4 zdbs, healthy in the report and reachable from the host', async (t) => {
  t.timeout(REPORT_MS + 8 * 60_000);
  const { vm, ip, node } = await bootToReport(rig, 'storage-uefi', {}, REPORT_MS, guestSeconds);
  checkInventory(t, vm, node);
  const r = reportOf(node);
  const hdds = vm.instance.profile.disks.flatMap((d, i) => (d.type === 'hdd' ? [guestDisk(node, i)] : []));
  t.is(hdds.length, 4);
  t.deepEqual(r.zdbs.map((z) => z.disk).sort(), [...hdds].sort(), 'one zdb per HDD pool, none on the SSD');
  t.deepEqual(r.zdbs.map((z) => z.port).sort(), [9900, 9901, 9902, 9903]);
  t.is(r.inventory.secureBoot, 'disabled', 'efivarfs mounted: OVMF without enrolled keys');
  const healthy = await waitForNode(rig, node.nodeId, (n) => reportOf(n).zdbs.length === 4 && reportOf(n).zdbs.every((z) => z.healthy), 5 * 60_000, 'four healthy zdbs');
  t.true(reportOf(healthy).zdbs.every((z) => z.restarts === 0), JSON.stringify(reportOf(healthy).zdbs));
  for (const z of r.zdbs) {
    const pong = await rig.ns.exec('redis-cli', ['-h', ip, '-p', String(z.port), 'PING'], { timeout: 60_000 });
    t.is(pong.stdout.trim(), 'PONG', `zdb on ${z.disk} (port ${z.port}) from the host side`);
  }
  await vm.stop();
});

test.serial('multi-nic-bios: the report names the boot NIC, binds the key to it, and only that NIC holds the DHCP address', async (t) => {
  t.timeout(REPORT_MS + 60_000);
  const { vm, ip, node } = await bootToReport(rig, 'multi-nic-bios', {}, REPORT_MS, guestSeconds);
  checkInventory(t, vm, node);
  const r = reportOf(node);
  t.is(r.bootMac, vm.mac, 'BOOTIF: the NIC the node booted from');
  t.is(r.mac, vm.mac, 'the key is bound to the boot NIC');
  t.deepEqual(node.macs, [vm.mac]);
  const nics = r.inventory.nics.filter((n) => n.physical);
  t.deepEqual(nics.filter((n) => n.addresses.includes(ip)).map((n) => n.mac), [vm.mac], 'the DHCP address is on the boot NIC');
  t.true(nics.filter((n) => n.mac !== vm.mac).every((n) => !n.addresses.some((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a))), JSON.stringify(nics));
  t.is(r.zdbs.length, 0, 'one SSD and no missing-ssd: no zdb');
  await vm.stop();
});

test.serial('nvme-uefi: the report names the second NIC as the boot NIC, shows both NICs with their links, NVMe SSD + 2 SATA HDD pools give 2 zdbs', async (t) => {
  t.timeout(REPORT_MS + 60_000);
  const { vm, ip, node } = await bootToReport(rig, 'nvme-uefi', {}, REPORT_MS, guestSeconds);
  t.is(vm.mac, vm.macs[1], 'the profile boots from its second NIC');
  checkInventory(t, vm, node);
  const r = reportOf(node);
  t.is(r.bootMac, vm.macs[1], 'BOOTIF: the second NIC');
  t.is(r.mac, vm.macs[1], 'the key is bound to the boot NIC');
  const nics = r.inventory.nics.filter((n) => n.physical);
  t.deepEqual(nics.map((n) => [n.mac, n.link]).sort(), vm.macs.map((m) => [m, 'up']).sort(), 'both NICs, links up');
  t.deepEqual(nics.filter((n) => n.addresses.includes(ip)).map((n) => n.mac), [vm.macs[1]], 'the DHCP address is on the boot NIC');
  const ssd = r.inventory.disks.find((d) => d.name === guestDisk(node, 0))!;
  t.regex(ssd.name, /^nvme\d+n\d+$/, 'the SSD is the NVMe disk');
  t.is(r.inventory.secureBoot, 'disabled');
  const hdds = [guestDisk(node, 1), guestDisk(node, 2)];
  const healthy = await waitForNode(rig, node.nodeId, (n) => reportOf(n).zdbs.length === 2 && reportOf(n).zdbs.every((z) => z.healthy), 5 * 60_000, 'two healthy zdbs');
  t.deepEqual(reportOf(healthy).zdbs.map((z) => z.disk).sort(), [...hdds].sort(), 'one zdb per HDD pool, none on the NVMe SSD');
  await vm.stop();
});
