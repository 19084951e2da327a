// Hardware profiles: the shipped files load, every bad key is named in the
// error, sizes and MACs parse, and derived MACs are stable, local and distinct.
import test from 'ava';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseProfile, parseProfileYaml, loadProfile, listProfiles, instanceOf, deriveMac, parseSize, parseMac, ProfileError } from '../../qemu/profile.ts';
import type { HwProfile } from '../../qemu/profile.ts';

const base = { name: 'p', firmware: 'bios', nics: [{ model: 'virtio' }] };
const parse = (over: Record<string, unknown>) => parseProfile({ ...base, ...over }, 'p.yaml');

test('the shipped profiles load and match the issue', async (t) => {
  const all = await listProfiles();
  const byName = new Map(all.map((p) => [p.name, p]));
  const small = byName.get('small-bios')!;
  t.is(small.firmware, 'bios');
  t.is(small.nics.length, 1);
  t.deepEqual(small.disks.map((d) => d.type), ['ssd', 'ssd']);
  const storage = byName.get('storage-uefi')!;
  t.is(storage.firmware, 'uefi');
  t.is(storage.machine, 'q35');
  t.is(storage.nics.length, 2);
  t.deepEqual(storage.disks.map((d) => d.type), ['ssd', 'hdd', 'hdd', 'hdd', 'hdd']);
  const multi = byName.get('multi-nic-bios')!;
  t.true(multi.nics.length >= 2);
  t.true(multi.nics.some((n) => n.model === 'e1000'));
  t.is(byName.get('secureboot-uefi')!.firmware, 'uefi-secureboot');
  const nvme = byName.get('nvme-uefi')!;
  t.is(nvme.firmware, 'uefi');
  t.deepEqual(nvme.nics.map((n) => n.boot), [false, true]);
  t.deepEqual(nvme.disks.map((d) => `${d.type}/${d.bus}`), ['ssd/nvme', 'hdd/sata', 'hdd/sata']);
  t.is(instanceOf(nvme, 0).bootMac, instanceOf(nvme, 0).macs[1]);
});

test('defaults: 1 CPU, 1G, scsi qcow2 disks, pc for bios, q35 for uefi', (t) => {
  const p = parse({ disks: [{ size: '8G', type: 'hdd' }] });
  t.is(p.cpus, 1);
  t.is(p.memoryMiB, 1024);
  t.is(p.machine, 'pc');
  t.deepEqual(p.disks[0], { sizeBytes: 8 * 2 ** 30, type: 'hdd', bus: 'scsi', format: 'qcow2' });
  t.is(parse({ firmware: 'uefi' }).machine, 'q35');
  t.is(parse({ memory: 512 }).memoryMiB, 512);
  t.is(parse({ memory: '2G' }).memoryMiB, 2048);
});

const bad: [string, Record<string, unknown>, RegExp][] = [
  ['unknown top-level key', { gpu: 1 }, /p\.yaml: unknown key "gpu"/],
  ['bad firmware', { firmware: 'coreboot' }, /p\.yaml\.firmware must be one of bios, uefi, uefi-secureboot, got "coreboot"/],
  ['missing firmware', { firmware: undefined }, /p\.yaml\.firmware is required/],
  ['bad name', { name: 'Big Box' }, /name must be lower-case/],
  ['cpus not integer', { cpus: 1.5 }, /p\.yaml\.cpus must be an integer between 1 and 64/],
  ['memory too small', { memory: '64M' }, /p\.yaml\.memory must be between 128M and 64G/],
  ['memory not a size', { memory: 'lots' }, /p\.yaml\.memory: "lots" is not a memory size/],
  ['no NICs', { nics: [] }, /p\.yaml\.nics must be a list with at least one NIC/],
  ['bad NIC model', { nics: [{ model: 'rtl8139' }] }, /p\.yaml\.nics\[0\]\.model must be one of virtio, e1000, e1000e/],
  ['bad MAC', { nics: [{ mac: '52:54:00:zz:00:01' }] }, /p\.yaml\.nics\[0\]\.mac: "52:54:00:zz:00:01" is not a unicast MAC/],
  ['multicast MAC', { nics: [{ mac: '01:00:5e:00:00:01' }] }, /nics\[0\]\.mac/],
  ['duplicate MAC', { nics: [{ mac: '52:54:00:00:00:01' }, { mac: '52-54-00-00-00-01' }] }, /the same MAC is given twice/],
  ['unknown NIC key', { nics: [{ model: 'virtio', speed: 10 }] }, /p\.yaml\.nics\[0\]\.speed: unknown key/],
  ['disk without size', { disks: [{ type: 'ssd' }] }, /p\.yaml\.disks\[0\]\.size is required/],
  ['disk size unit', { disks: [{ size: '8X', type: 'ssd' }] }, /p\.yaml\.disks\[0\]\.size: "8X" is not a size/],
  ['disk type', { disks: [{ size: '8G', type: 'nvme' }] }, /p\.yaml\.disks\[0\]\.type must be one of ssd, hdd/],
  ['disk bus', { disks: [{ size: '8G', type: 'ssd', bus: 'ide' }] }, /p\.yaml\.disks\[0\]\.bus must be one of scsi, virtio/],
  ['NIC boot not a boolean', { nics: [{ boot: 'no' }] }, /p\.yaml\.nics\[0\]\.boot must be true or false, got "no"/],
  ['no NIC boots', { nics: [{ boot: false }, { boot: false }] }, /p\.yaml\.nics: at least one NIC must network-boot/],
  ['NVMe HDD', { disks: [{ size: '8G', type: 'hdd', bus: 'nvme' }] }, /p\.yaml\.disks\[0\]: bus nvme cannot present an HDD/],
  ['too many SATA disks', { disks: Array.from({ length: 7 }, () => ({ size: '1G', type: 'hdd', bus: 'sata' })) }, /p\.yaml\.disks: at most 6 SATA disks/],
  ['virtio HDD', { disks: [{ size: '8G', type: 'ssd' }, { size: '8G', type: 'hdd', bus: 'virtio' }] }, /p\.yaml\.disks\[1\]: bus virtio cannot present an HDD/],
  ['secure boot on pc', { firmware: 'uefi-secureboot', machine: 'pc' }, /machine must be q35 for uefi-secureboot/],
  ['disks not a list', { disks: { size: '8G' } }, /p\.yaml\.disks must be a list/],
];

for (const [title, over, re] of bad) {
  test(`rejects: ${title}`, (t) => {
    const e = t.throws(() => parse(over), { instanceOf: ProfileError });
    t.regex(e!.message, re);
  });
}

test('YAML syntax errors are ProfileErrors naming the file', (t) => {
  const e = t.throws(() => parseProfileYaml('name: [unclosed', 'broken.yaml'), { instanceOf: ProfileError });
  t.regex(e!.message, /^broken\.yaml: not valid YAML/);
});

test('sizes: binary units, plain bytes, junk refused', (t) => {
  t.is(parseSize('512M'), 512 * 2 ** 20);
  t.is(parseSize('8G'), 8 * 2 ** 30);
  t.is(parseSize('1T'), 2 ** 40);
  t.is(parseSize('4GiB'), 4 * 2 ** 30);
  t.is(parseSize(4096), 4096);
  t.is(parseSize('-1G'), undefined);
  t.is(parseSize('1.5G'), undefined);
  t.is(parseSize(0), undefined);
});

test('MAC parsing normalises case and separators', (t) => {
  t.is(parseMac('52-54-00-AB-CD-EF'), '52:54:00:ab:cd:ef');
  t.is(parseMac('525400abcdef'), undefined);
  t.is(parseMac('03:00:00:00:00:00'), undefined);
});

test('derived MACs: deterministic, locally administered unicast, distinct per instance and NIC', (t) => {
  const p = parse({ name: 'box', nics: [{}, {}, {}] }) as HwProfile;
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const inst = instanceOf(p, i);
    t.is(inst.name, `box-${i}`);
    t.deepEqual(inst.macs, instanceOf(p, i).macs);
    for (const mac of inst.macs) {
      t.regex(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      t.is(first & 1, 0, 'unicast');
      t.is(first & 2, 2, 'locally administered');
      seen.add(mac);
    }
  }
  t.is(seen.size, 150);
  t.not(deriveMac('box', 0, 0), deriveMac('other', 0, 0));
});

test('a fixed MAC is counted up per instance', (t) => {
  const p = parse({ nics: [{ mac: '52:54:00:00:00:ff' }, {}] });
  t.is(instanceOf(p, 0).macs[0], '52:54:00:00:00:ff');
  t.is(instanceOf(p, 1).macs[0], '52:54:00:00:01:00');
  t.is(instanceOf(p, 1).macs[1], deriveMac('p', 1, 1));
  t.throws(() => instanceOf(p, -1), { instanceOf: ProfileError });
});

test('loadProfile: by name from a folder, by path, name and file must agree, unknown names list the known ones', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-hwp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'one.yaml'), 'name: one\nfirmware: uefi\nnics: [{ model: e1000 }]\n');
  await writeFile(path.join(dir, 'two.yaml'), 'name: three\nfirmware: bios\nnics: [{}]\n');
  t.is((await loadProfile('one', dir)).nics[0].model, 'e1000');
  t.is((await loadProfile(path.join(dir, 'two.yaml'), dir)).name, 'three');
  await t.throwsAsync(loadProfile('two', dir), { instanceOf: ProfileError, message: /name is "three" but the file is two\.yaml/ });
  await t.throwsAsync(loadProfile('four', dir), { instanceOf: ProfileError, message: /no hardware profile "four" .*known: one, two/ });
  await t.throwsAsync(loadProfile('../etc', dir), { instanceOf: ProfileError });
});
