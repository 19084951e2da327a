import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectInventory } from '../../agent/inventory/index.ts';
import { parseCpuinfo, parseMeminfo, ProcParseError } from '../../agent/inventory/procfs.ts';
import { busFromDevicePath, diskKind, secureBootFromEfivar } from '../../agent/inventory/sysfs.ts';
import { parseLsblk, LsblkParseError } from '../../agent/inventory/lsblk.ts';
import { blkidFinding, parseBlkidExport } from '../../agent/inventory/blkid.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import type { SiSnapshot } from '../../agent/inventory/si.ts';

const FIX = join(import.meta.dirname, '../fixtures/agent');
const GiB = 1024 ** 3;
const si = (name: string): SiSnapshot => JSON.parse(readFileSync(join(FIX, name, 'si.json'), 'utf8'));

test('procfs: a real cpuinfo counts logical CPUs and sees the hypervisor flag; meminfo gives bytes', (t) => {
  const cpu = parseCpuinfo(readFileSync(join(FIX, 'host-firecracker/proc/cpuinfo'), 'utf8'));
  t.deepEqual(cpu, { model: 'AMD EPYC', vendor: 'AuthenticAMD', logical: 2, hypervisorFlag: true });
  t.is(parseMeminfo('MemTotal:       2012724 kB\nMemFree: 1 kB\n'), 2012724 * 1024);
  t.throws(() => parseCpuinfo('garbage'), { instanceOf: ProcParseError });
  t.throws(() => parseMeminfo('MemFree: 1 kB'), { instanceOf: ProcParseError, message: /MemTotal/ });
});

test('storage-uefi (QEMU, virtio-scsi): 1 non-rotating + 4 rotating disks of the profile sizes, serials from VPD 0x80', (t) => {
  const inv = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
  t.is(inv.cpu.logical, 2);
  t.true(Math.abs(inv.memoryBytes - 2 * GiB) / (2 * GiB) < 0.05);
  t.deepEqual(inv.disks.map((d) => [d.name, d.sizeBytes / GiB, d.rotational, d.bus, d.serial]), [
    ['sda', 16, false, 'scsi', 'zb0-000101'],
    ['sdb', 32, true, 'scsi', 'zb1-000101'],
    ['sdc', 32, true, 'scsi', 'zb2-000101'],
    ['sdd', 32, true, 'scsi', 'zb3-000101'],
    ['sde', 32, true, 'scsi', 'zb4-000101'],
  ]);
  t.deepEqual(inv.nics.filter((n) => n.physical).map((n) => [n.name, n.mac, n.driver, n.link, n.speedMbps]), [
    ['eth0', '52:54:00:00:01:01', 'virtio_net', 'up', undefined],
    ['eth1', '52:54:00:00:01:02', 'virtio_net', 'down', undefined],
  ]);
  t.deepEqual(inv.dmi, { vendor: 'zeroboot', product: 'storage-uefi', serial: 'storage-uefi-1', uuid: '5a1d2c3e-0000-4000-8000-525400000101' });
  t.is(inv.secureBoot, 'disabled');
  // -smbios hides QEMU's DMI strings: the CPU flag still tells.
  t.deepEqual(inv.virtualizedBy, ['cpu hypervisor flag']);
});

test('nvme-sata (QEMU): NVMe, SATA, a USB disk that does not claim to be removable, a DVD drive, e1000 speed, Secure Boot on', (t) => {
  const inv = collectInventory({ root: join(FIX, 'qemu-nvme-sata'), debugVm: true });
  const by = Object.fromEntries(inv.disks.map((d) => [d.name, d]));
  t.like(by.nvme0n1, { bus: 'nvme', kind: 'disk', rotational: false, model: 'QEMU NVMe Ctrl', serial: 'zbnvme0-000201', sizeBytes: 32 * GiB });
  t.like(by.sda, { bus: 'sata', kind: 'disk', rotational: true, vendor: 'ATA', serial: 'QM00001' });
  t.like(by.sdc, { bus: 'usb', kind: 'disk', removable: false });
  t.like(by.sr0, { kind: 'cdrom', removable: true });
  t.like(inv.nics.find((n) => n.name === 'eth0'), { driver: 'e1000', speedMbps: 1000 });
  t.is(inv.secureBoot, 'enabled');
  t.deepEqual(inv.virtualizedBy, ['cpu hypervisor flag', 'dmi QEMU Standard PC (Q35 + ICH9, 2009)', 'zos-debug-vm']);
});

test('a real host, cross-checked with what systeminformation said there: its virtio disk without a model is kept and noted', (t) => {
  const inv = collectInventory({ root: join(FIX, 'host-firecracker'), si: si('host-firecracker') });
  const vda = inv.disks.find((d) => d.name === 'vda')!;
  t.like(vda, { bus: 'virtio', kind: 'disk', rotational: true, sizeBytes: 256 * GiB });
  t.is(vda.model, undefined);
  t.deepEqual(inv.notes, ["systeminformation's disk list misses vda (virtio, no model); kept from sysfs"]);
  t.deepEqual(inv.disks.filter((d) => d.kind !== 'disk').map((d) => d.kind), [...Array(8).fill('loop'), 'zram']);
  t.like(inv.nics.find((n) => n.name === 'eth0'), { physical: true, driver: 'virtio_net', addresses: ['192.0.2.2', 'fd00::2'] });
  t.false(inv.nics.find((n) => n.name === 'ifb0')!.physical);
  t.is(inv.secureBoot, 'no-efi');
  t.deepEqual(inv.dmi, {});
});

test('cross-check notes disagreements and fills a model sysfs lacks', (t) => {
  const snap: SiSnapshot = { ...si('host-firecracker'), cpu: { cores: 3 }, mem: { total: 1 }, diskLayout: [{ device: '/dev/vda', name: 'Fancy Disk', size: 5 }, { device: '/dev/sdz', size: 1 }] };
  const inv = collectInventory({ root: join(FIX, 'host-firecracker'), si: snap });
  t.is(inv.disks.find((d) => d.name === 'vda')!.model, 'Fancy Disk');
  t.is(inv.notes.length, 4, inv.notes.join('\n'));
  t.regex(inv.notes.join('\n'), /logical CPUs: 2 .* 3/);
  t.regex(inv.notes.join('\n'), /vda: size 274877906944 in sysfs, 5/);
  t.regex(inv.notes.join('\n'), /lists disk sdz/);
});

test('bus from the device link, kind from the name', (t) => {
  const cases: [string, string, ReturnType<typeof busFromDevicePath>][] = [
    ['../devices/pci0000:00/0000:00:14.0/usb2/2-3/2-3:1.0/host6/target6:0:0/6:0:0:0/block/sdb', 'sdb', 'usb'],
    ['../devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1', 'nvme0n1', 'nvme'],
    ['../devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/block/sda', 'sda', 'sata'],
    ['../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sda', 'sda', 'sas'],
    ['../devices/pci0000:00/0000:00:1c.0/0000:02:00.0/host0/target0:2:0/0:2:0:0/block/sda', 'sda', 'scsi'],
    ['../devices/pci0000:00/0000:00:04.0/virtio2/host0/target0:0:0/0:0:0:0/block/sda', 'sda', 'scsi'],
    ['../devices/pci0000:00/0000:00:02.0/virtio1/block/vda', 'vda', 'virtio'],
    ['../devices/platform/fe340000.mmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0', 'mmcblk0', 'mmc'],
    ['../devices/virtual/block/loop0', 'loop0', 'virtual'],
    ['', 'x', 'unknown'],
  ];
  for (const [path, name, bus] of cases) t.is(busFromDevicePath(path, name), bus, path);
  t.deepEqual(['loop0', 'ram0', 'zram0', 'fd0', 'sr0', 'md127', 'dm-0', 'sda'].map((n) => diskKind(n, undefined)), ['loop', 'ram', 'zram', 'floppy', 'cdrom', 'md', 'dm', 'disk']);
  t.is(diskKind('sdb', '5'), 'cdrom');
});

test('Secure Boot from the efivar bytes', (t) => {
  t.is(secureBootFromEfivar(Buffer.from([6, 0, 0, 0, 1]), true), 'enabled');
  t.is(secureBootFromEfivar(Buffer.from([6, 0, 0, 0, 0]), true), 'disabled');
  t.is(secureBootFromEfivar(Buffer.from([6, 0, 0]), true), 'unknown');
  t.is(secureBootFromEfivar(undefined, true), 'unknown');
  t.is(secureBootFromEfivar(undefined, false), 'no-efi');
});

test('lsblk: the real output of this host, and the older string-typed form', (t) => {
  const devs = parseLsblk(readFileSync(join(FIX, 'host-firecracker/lsblk.json'), 'utf8'));
  t.like(devs.find((d) => d.name === 'vda'), { type: 'disk', sizeBytes: 256 * GiB, rotational: true, removable: false });
  const old = parseLsblk('{"blockdevices": [{"name": "sda", "size": "500107862016", "type": "disk", "rota": "1", "rm": "0", "tran": "sata", "model": "ST500DM002-1BD14", "children": [{"name": "sda1"}]}]}');
  t.deepEqual(old, [{ name: 'sda', type: 'disk', sizeBytes: 500107862016, rotational: true, removable: false, tran: 'sata', model: 'ST500DM002-1BD14', children: ['sda1'] }]);
  t.throws(() => parseLsblk('nope'), { instanceOf: LsblkParseError });
  t.throws(() => parseLsblk('{"blockdevices":[{"name":"sda","size":"1.5G"}]}'), { instanceOf: LsblkParseError, message: /-b/ });
});

test('blkid export lines, with escapes, in the classifier words', (t) => {
  const rec = parseBlkidExport('DEVNAME=/dev/loop3\nLABEL=my\\ disk\nUUID=1\nTYPE=ext4\nUSAGE=filesystem\n');
  t.is(rec.LABEL, 'my disk');
  t.is(blkidFinding(rec), 'ext4 signature');
  t.is(blkidFinding(parseBlkidExport('PTUUID=x\nPTTYPE=dos\n')), 'mbr partition table');
  t.is(blkidFinding({}), undefined);
});

test('capacity units: CRU logical CPUs, MRU bytes, SRU/HRU the SSD and HDD pool bytes', (t) => {
  t.deepEqual(capacity(2, 2 * GiB, [{ sizeBytes: 16 * GiB, type: 'ssd' }, ...Array(4).fill({ sizeBytes: 32 * GiB, type: 'hdd' })]), { cru: 2, mru: 2 * GiB, sru: 16 * GiB, hru: 128 * GiB });
  t.deepEqual(capacity(1, 1, []), { cru: 1, mru: 1, sru: 0, hru: 0 });
});
