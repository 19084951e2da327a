// The QEMU command line per firmware, NIC model and disk type, the iPXE ROM
// choice, the no-ROM mode and the refusals; plus the accelerator choice.
import test from 'ava';
import { existsSync } from 'node:fs';
import { qemuArgs, nicRom, varsTemplate, QemuArgsError, DEBIAN_FIRMWARE } from '../../qemu/args.ts';
import type { VmPlan } from '../../qemu/args.ts';
import { parseProfile, instanceOf, loadProfile } from '../../qemu/profile.ts';
import type { HwProfile } from '../../qemu/profile.ts';
import { chooseAccel, ACCEL_ENV } from '../../qemu/kvm-probe.ts';

function plan(profile: HwProfile, extra: Partial<VmPlan> = {}): VmPlan {
  return {
    instance: instanceOf(profile, 0),
    taps: profile.nics.map((_, i) => `tap${i}`),
    disks: profile.disks.map((spec, i) => ({ path: `/w/disk${i}.${spec.format}`, spec })),
    varsFile: profile.firmware === 'bios' ? undefined : '/w/vars.fd',
    accel: 'tcg',
    ...extra,
  };
}

/** The values of every occurrence of a flag. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

const bios = parseProfile({ name: 'b', firmware: 'bios', cpus: 2, memory: '2G', nics: [{ model: 'virtio' }, { model: 'e1000' }], disks: [{ size: '8G', type: 'ssd' }, { size: '1T', type: 'hdd', format: 'raw' }, { size: '4G', type: 'ssd', bus: 'virtio' }] });
const uefi = parseProfile({ name: 'u', firmware: 'uefi', nics: [{ model: 'virtio' }, { model: 'e1000e' }] });
const secure = parseProfile({ name: 's', firmware: 'uefi-secureboot', nics: [{}] });

test('common flags: tcg, no defaults, serial on stdio, no reboot, size from the profile', (t) => {
  const a = qemuArgs(plan(bios));
  t.deepEqual(values(a, '-accel'), ['tcg']);
  t.deepEqual(values(a, '-smp'), ['2']);
  t.deepEqual(values(a, '-m'), ['2048']);
  t.deepEqual(values(a, '-serial'), ['stdio']);
  t.deepEqual(values(a, '-monitor'), ['none']);
  for (const f of ['-nodefaults', '-nographic', '-no-reboot']) t.true(a.includes(f), f);
  t.false(a.includes('-cpu'), 'TCG keeps the default CPU model');
  t.deepEqual(values(qemuArgs(plan(bios, { accel: 'kvm' })), '-cpu'), ['host']);
  t.deepEqual(values(qemuArgs(plan(bios, { serial: 'pty' })), '-serial'), ['pty']);
});

test('bios: SeaBIOS with -boot n, pc machine, pxe-* ROMs, no pflash', (t) => {
  const a = qemuArgs(plan(bios));
  t.deepEqual(values(a, '-boot'), ['n']);
  t.deepEqual(values(a, '-machine'), ['pc']);
  t.false(values(a, '-drive').some((d) => d.startsWith('if=pflash')));
  const devs = values(a, '-device');
  t.true(devs.includes(`virtio-net-pci,netdev=net0,mac=${instanceOf(bios, 0).macs[0]},disable-legacy=on,romfile=/usr/lib/ipxe/qemu/pxe-virtio.rom,bootindex=1`));
  t.true(devs.includes(`e1000,netdev=net1,mac=${instanceOf(bios, 0).macs[1]},romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=2`));
  t.deepEqual(values(a, '-netdev'), ['tap,id=net0,ifname=tap0,script=no,downscript=no', 'tap,id=net1,ifname=tap1,script=no,downscript=no']);
});

test('uefi: OVMF code read-only plus the VM\'s own vars, efi-* ROMs', (t) => {
  const a = qemuArgs(plan(uefi));
  t.deepEqual(values(a, '-machine'), ['q35']);
  t.deepEqual(values(a, '-drive'), [
    'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    'if=pflash,format=raw,unit=1,file=/w/vars.fd',
  ]);
  t.deepEqual(values(a, '-boot'), []);
  const devs = values(a, '-device');
  t.true(devs.some((d) => d.startsWith('virtio-net-pci,') && d.includes('disable-legacy=on') && d.includes('romfile=/usr/lib/ipxe/qemu/efi-virtio.rom')));
  t.true(devs.some((d) => d.startsWith('e1000e,') && d.includes('romfile=/usr/lib/ipxe/qemu/efi-e1000e.rom')));
  t.is(varsTemplate('uefi'), '/usr/share/OVMF/OVMF_VARS_4M.fd');
  t.is(varsTemplate('bios'), undefined);
});

test('uefi-secureboot: secboot code, Microsoft-key vars, q35 with SMM, secure pflash, no unsigned iPXE ROM', (t) => {
  const a = qemuArgs(plan(secure));
  t.deepEqual(values(a, '-machine'), ['q35,smm=on']);
  t.true(values(a, '-drive')[0].endsWith('file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd'));
  t.deepEqual(values(a, '-global'), ['driver=cfi.pflash01,property=secure,value=on']);
  t.is(varsTemplate('uefi-secureboot'), '/usr/share/OVMF/OVMF_VARS_4M.ms.fd');
  const nics = values(a, '-device').filter((d) => d.includes('netdev='));
  t.true(nics.length > 0 && nics.every((d) => d.includes('romfile=,')), 'the firmware\'s own PXE: QEMU\'s iPXE ROMs are unsigned');
});

test('the firmware files and ROMs named here exist on this machine (Debian ovmf, ipxe-qemu)', (t) => {
  for (const f of [DEBIAN_FIRMWARE.ovmfCode, DEBIAN_FIRMWARE.ovmfVars, DEBIAN_FIRMWARE.ovmfSecureCode, DEBIAN_FIRMWARE.ovmfSecureVars]) t.true(existsSync(f), f);
  for (const model of ['virtio', 'e1000', 'e1000e'] as const) {
    for (const fw of ['bios', 'uefi'] as const) t.true(existsSync(nicRom(model, fw)), nicRom(model, fw));
  }
});

test('disks: one virtio-scsi controller, SSD rotation_rate=1, HDD 7200, virtio-blk, formats', (t) => {
  const a = qemuArgs(plan(bios));
  const devs = values(a, '-device');
  t.is(devs.filter((d) => d === 'virtio-scsi-pci,id=scsi0').length, 1);
  const scsi = devs.filter((d) => d.startsWith('scsi-hd,'));
  t.is(scsi.length, 2);
  t.regex(scsi[0], /drive=disk0,.*rotation_rate=1,/);
  t.regex(scsi[1], /drive=disk1,.*rotation_rate=7200,/);
  t.true(devs.some((d) => /^virtio-blk-pci,drive=disk2,serial=/.test(d)));
  const drives = values(a, '-drive');
  t.true(drives[0].startsWith('if=none,id=disk0,file=/w/disk0.qcow2,format=qcow2'));
  t.true(drives[1].startsWith('if=none,id=disk1,file=/w/disk1.raw,format=raw'));
  t.false(values(qemuArgs(plan(uefi)), '-device').includes('virtio-scsi-pci,id=scsi0'), 'no controller without SCSI disks');
});

test('no iPXE ROM: empty romfile (firmware PXE) on UEFI, refused on BIOS and for non-virtio NICs', (t) => {
  const virtioOnly = parseProfile({ name: 'v', firmware: 'uefi', nics: [{}, {}] });
  const a = qemuArgs(plan(virtioOnly, { noIpxeRom: true }));
  t.true(values(a, '-device').filter((d) => d.startsWith('virtio-net-pci')).every((d) => d.includes(',romfile=,')));
  t.throws(() => qemuArgs(plan(bios, { noIpxeRom: true })), { instanceOf: QemuArgsError, message: /SeaBIOS has no network boot/ });
  t.throws(() => qemuArgs(plan(uefi, { noIpxeRom: true })), { instanceOf: QemuArgsError, message: /only virtio NICs/ });
});

test('firmware override: a BIOS profile booted as UEFI gets OVMF and efi ROMs', (t) => {
  const p = parseProfile({ name: 'x', firmware: 'bios', nics: [{}] });
  const a = qemuArgs(plan(p, { firmware: 'uefi', varsFile: '/w/v.fd' }));
  t.true(values(a, '-drive').some((d) => d.includes('OVMF_CODE_4M.fd')));
  t.true(values(a, '-device')[0].includes('efi-virtio.rom'));
  t.throws(() => qemuArgs(plan(p, { firmware: 'uefi' })), { instanceOf: QemuArgsError, message: /varsFile/ });
});

test('mismatched taps or disks are refused; commas in paths are escaped', (t) => {
  t.throws(() => qemuArgs(plan(bios, { taps: ['tap0'] })), { instanceOf: QemuArgsError, message: /2 NIC\(s\) but 1 tap/ });
  t.throws(() => qemuArgs(plan(bios, { disks: [] })), { instanceOf: QemuArgsError, message: /3 disk\(s\) but 0 file/ });
  const a = qemuArgs(plan(uefi, { varsFile: '/w/a,b.fd' }));
  t.true(values(a, '-drive').includes('if=pflash,format=raw,unit=1,file=/w/a,,b.fd'));
});

test('identity: stable UUID and SMBIOS from the instance', (t) => {
  // Expected UUIDs computed apart from the code, with python3, from the
  // documented derivation: the first 16 bytes of sha256("<name>/<macs joined by ,>")
  // as a version 4, RFC 4122 variant UUID:
  //   uuid.UUID(bytes=hashlib.sha256(b'b-0/52:54:00:12:34:01,52:54:00:12:34:02').digest()[:16], version=4)
  const first = { profile: bios, index: 0, name: 'b-0', macs: ['52:54:00:12:34:01', '52:54:00:12:34:02'], bootMac: '52:54:00:12:34:01' };
  const second = { profile: bios, index: 1, name: 'b-1', macs: ['52:54:00:12:34:03', '52:54:00:12:34:04'], bootMac: '52:54:00:12:34:03' };
  const a = qemuArgs(plan(bios, { instance: first }));
  t.deepEqual(values(a, '-uuid'), ['b1d66ec6-1b04-4719-a1b7-664e90eba92f']);
  t.deepEqual(values(qemuArgs(plan(bios, { instance: second })), '-uuid'), ['7d8c7e28-961d-4447-afac-13ec6d5e1573']);
  t.deepEqual(values(a, '-smbios'), ['type=1,manufacturer=zeroboot,product=b,serial=b-0']);
  t.deepEqual(values(a, '-name'), ['b-0']);
});

test('the shipped storage profile: 1 SSD + 4 HDD on SCSI, 2 NICs', async (t) => {
  const p = await loadProfile('storage-uefi');
  const devs = values(qemuArgs(plan(p)), '-device');
  t.is(devs.filter((d) => d.includes('rotation_rate=1,')).length, 1);
  t.is(devs.filter((d) => d.includes('rotation_rate=7200,')).length, 4);
  t.is(devs.filter((d) => d.startsWith('virtio-net-pci')).length, 2);
});

test('the shipped nvme-uefi profile: the whole argv, written out by hand', async (t) => {
  const p = await loadProfile('nvme-uefi');
  const instance = { profile: p, index: 0, name: 'nvme-uefi-0', macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'], bootMac: '52:54:00:aa:00:02' };
  // UUID as in the identity test, with python3:
  //   uuid.UUID(bytes=hashlib.sha256(b'nvme-uefi-0/52:54:00:aa:00:01,52:54:00:aa:00:02').digest()[:16], version=4)
  t.deepEqual(qemuArgs(plan(p, { instance })), [
    '-name', 'nvme-uefi-0',
    '-accel', 'tcg',
    '-machine', 'q35',
    '-smp', '2',
    '-m', '2048',
    '-uuid', '8bd19951-2715-4997-84fc-001023e7cace',
    '-smbios', 'type=1,manufacturer=zeroboot,product=nvme-uefi,serial=nvme-uefi-0',
    '-nodefaults',
    '-nographic',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-no-reboot',
    '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive', 'if=pflash,format=raw,unit=1,file=/w/vars.fd',
    // The first NIC does not boot: no ROM, no boot entry. The second is the only boot entry.
    '-netdev', 'tap,id=net0,ifname=tap0,script=no,downscript=no',
    '-device', 'e1000e,netdev=net0,mac=52:54:00:aa:00:01,romfile=',
    '-netdev', 'tap,id=net1,ifname=tap1,script=no,downscript=no',
    '-device', 'virtio-net-pci,netdev=net1,mac=52:54:00:aa:00:02,disable-legacy=on,romfile=/usr/lib/ipxe/qemu/efi-virtio.rom,bootindex=1',
    '-device', 'ahci,id=ahci0',
    '-drive', 'if=none,id=disk0,file=/w/disk0.qcow2,format=qcow2,cache=unsafe,discard=unmap',
    '-device', 'nvme,drive=disk0,serial=zb0-aa0001',
    '-drive', 'if=none,id=disk1,file=/w/disk1.qcow2,format=qcow2,cache=unsafe,discard=unmap',
    '-device', 'ide-hd,drive=disk1,bus=ahci0.0,rotation_rate=7200,serial=zb1-aa0001',
    '-drive', 'if=none,id=disk2,file=/w/disk2.qcow2,format=qcow2,cache=unsafe,discard=unmap',
    '-device', 'ide-hd,drive=disk2,bus=ahci0.1,rotation_rate=7200,serial=zb2-aa0001',
  ]);
  // The boot MAC is the second NIC's; derived MACs computed apart with python3:
  //   h = bytearray(hashlib.sha256(b'zeroboot-hw/nvme-uefi/0/1').digest()); h[0] = (h[0] & 0xfc) | 2
  t.deepEqual(instanceOf(p, 0).macs, ['6a:d8:81:09:25:6b', '66:54:b2:ea:ab:47']);
  t.is(instanceOf(p, 0).bootMac, '66:54:b2:ea:ab:47');
});

test('SATA: SSD and HDD rotation rates on one AHCI controller, ports counted apart from other buses', (t) => {
  const p = parseProfile({ name: 'q', firmware: 'bios', nics: [{}], disks: [{ size: '8G', type: 'ssd', bus: 'sata' }, { size: '8G', type: 'ssd' }, { size: '8G', type: 'hdd', bus: 'sata', format: 'raw' }] });
  const instance = { profile: p, index: 0, name: 'q-0', macs: ['52:54:00:aa:00:01'], bootMac: '52:54:00:aa:00:01' };
  const devs = values(qemuArgs(plan(p, { instance })), '-device');
  t.deepEqual(devs.filter((d) => /^(ahci|ide-hd|scsi-hd|virtio-scsi)/.test(d)), [
    'virtio-scsi-pci,id=scsi0',
    'ahci,id=ahci0',
    'ide-hd,drive=disk0,bus=ahci0.0,rotation_rate=1,serial=zb0-aa0001',
    'scsi-hd,drive=disk1,bus=scsi0.0,channel=0,scsi-id=0,lun=1,rotation_rate=1,serial=zb1-aa0001',
    'ide-hd,drive=disk2,bus=ahci0.1,rotation_rate=7200,serial=zb2-aa0001',
  ]);
});

test('boot: false on the first NIC: no ROM, no bootindex; the next NIC is boot entry 1', (t) => {
  const p = parseProfile({ name: 'n', firmware: 'bios', nics: [{ model: 'virtio', boot: false }, { model: 'e1000' }, { model: 'virtio' }] });
  const instance = { profile: p, index: 0, name: 'n-0', macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02', '52:54:00:aa:00:03'], bootMac: '52:54:00:aa:00:02' };
  t.deepEqual(values(qemuArgs(plan(p, { instance })), '-device'), [
    'virtio-net-pci,netdev=net0,mac=52:54:00:aa:00:01,disable-legacy=on,romfile=',
    'e1000,netdev=net1,mac=52:54:00:aa:00:02,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=1',
    'virtio-net-pci,netdev=net2,mac=52:54:00:aa:00:03,disable-legacy=on,romfile=/usr/lib/ipxe/qemu/pxe-virtio.rom,bootindex=2',
  ]);
});

test('accelerator: TCG when forced by env or option, KVM only when the probe says so', async (t) => {
  const yes = async () => ({ usable: true, reason: 'probe ok' });
  const no = async () => ({ usable: false, reason: 'no /dev/kvm' });
  t.is((await chooseAccel('auto', {}, yes)).accel, 'kvm');
  t.deepEqual(await chooseAccel('auto', {}, no), { accel: 'tcg', reason: 'TCG: no /dev/kvm' });
  t.is((await chooseAccel('auto', { [ACCEL_ENV]: 'tcg' }, yes)).accel, 'tcg');
  t.is((await chooseAccel('kvm', { [ACCEL_ENV]: 'tcg' }, yes)).accel, 'tcg');
  t.is((await chooseAccel('off', {}, yes)).accel, 'tcg');
  t.is((await chooseAccel('kvm', {}, no)).accel, 'kvm');
});
