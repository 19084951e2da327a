// The media builders' pure parts: the PE section writer that makes the UKI
// (section table, alignment, checksum, refusals), the FAT16 layout (boot
// sector fields, 8.3 names, fixed dates, refusals), the command line check,
// and the QEMU arguments for booting from a medium.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { addPeSections, peChecksum, peSectionData, peSections } from '../../image/media/pe-sections.ts';
import { fatImage, fatLayout, fatTime } from '../../image/media/fat.ts';
import { checkCmdline, isBzImage, MAX_CMDLINE } from '../../image/media/input.ts';
import { MediaInputError } from '../../image/media/errors.ts';
import { DEFAULT_EFI_STUB } from '../../image/media/uki.ts';
import { PeFormatError } from '../../image/pe-signature.ts';
import { qemuArgs, QemuArgsError } from '../../qemu/args.ts';
import { instanceOf, parseProfile } from '../../qemu/profile.ts';

const stub = readFileSync(DEFAULT_EFI_STUB);

test('added sections follow the stub\'s, page-aligned, with their bytes; SizeOfImage, count and checksum updated', (t) => {
  const linux = Buffer.alloc(10_001, 7);
  const out = addPeSections(stub, [{ name: '.cmdline', data: Buffer.from('console=ttyS0') }, { name: '.linux', data: linux }]);
  const before = peSections(stub);
  const after = peSections(out);
  t.deepEqual(after.slice(0, before.length), before);
  const [cmd, lin] = after.slice(before.length);
  t.is(cmd.name, '.cmdline');
  t.is(lin.name, '.linux');
  const lastEnd = Math.max(...before.map((s) => s.virtualAddress + s.virtualSize));
  t.true(cmd.virtualAddress >= lastEnd && cmd.virtualAddress % 4096 === 0);
  t.true(lin.virtualAddress >= cmd.virtualAddress + cmd.virtualSize && lin.virtualAddress % 4096 === 0);
  t.is(lin.virtualSize, linux.length);
  t.deepEqual(peSectionData(out, '.linux'), linux);
  t.is(peSectionData(out, '.cmdline')!.toString(), 'console=ttyS0');
  const opt = out.readUInt32LE(0x3c) + 24;
  t.true(out.readUInt32LE(opt + 56) >= lin.virtualAddress + lin.virtualSize, 'SizeOfImage covers the last section');
  t.is(out.readUInt32LE(opt + 64), peChecksum(out, opt + 64));
  t.deepEqual(addPeSections(stub, [{ name: '.cmdline', data: Buffer.from('console=ttyS0') }, { name: '.linux', data: linux }]), out, 'same input, same bytes');
});

test('refusals: a section the stub has, a long name, a non-PE stub, a PE32 stub, no room for headers', (t) => {
  t.throws(() => addPeSections(stub, [{ name: '.sbat', data: Buffer.from('x') }]), { instanceOf: PeFormatError, message: /already has a \.sbat/ });
  t.throws(() => addPeSections(stub, [{ name: '.toolongname', data: Buffer.from('x') }]), { instanceOf: PeFormatError, message: /1 to 8/ });
  t.throws(() => addPeSections(Buffer.alloc(4096), [{ name: '.linux', data: Buffer.from('x') }]), { instanceOf: PeFormatError, message: /no "MZ"/ });
  const pe32 = Buffer.from(stub);
  pe32.writeUInt16LE(0x10b, pe32.readUInt32LE(0x3c) + 24);
  t.throws(() => addPeSections(pe32, [{ name: '.linux', data: Buffer.from('x') }]), { instanceOf: PeFormatError, message: /PE32\+/ });
  const many = Array.from({ length: 40 }, (_, i) => ({ name: `.s${i}`, data: Buffer.from('x') }));
  t.throws(() => addPeSections(stub, many), { instanceOf: PeFormatError, message: /no room for 40 more section headers/ });
});

test('FAT16: BPB fields, 8.3 entries with lowercase flags, contiguous file data, fixed date and serial', (t) => {
  const a = Buffer.from('hello EFI');
  const b = Buffer.alloc(5000, 1);
  const img = fatImage([{ path: 'EFI/BOOT/BOOTX64.EFI', data: a }, { path: 'zos/vmlinuz', data: b }], { mtime: 1_700_000_000, serial: 0x12345678, label: 'TESTVOL' });
  t.is(img.readUInt16LE(510), 0xaa55);
  t.is(img.toString('latin1', 54, 62), 'FAT16   ');
  t.is(img.readUInt32LE(39), 0x12345678);
  t.is(img.toString('latin1', 43, 54), 'TESTVOL    ');
  const spc = img[13];
  const fatSectors = img.readUInt16LE(22);
  const clusters = (img.length / 512 - 1 - 2 * fatSectors - 32) / spc;
  t.true(clusters >= 4085 && clusters <= 65524, `a FAT16 cluster count (${clusters})`);
  const root = (1 + 2 * fatSectors) * 512;
  t.is(img.toString('latin1', root, root + 11), 'TESTVOL    ');
  t.is(img[root + 11], 0x08);
  t.is(img.toString('latin1', root + 32, root + 43), 'EFI        ');
  t.is(img.toString('latin1', root + 64, root + 75), 'ZOS        ');
  t.is(img[root + 64 + 12], 0x08, 'zos is lowercase');
  const stamp = fatTime(1_700_000_000);
  t.is(img.readUInt16LE(root + 32 + 24), stamp.date);
  t.is(stamp.date, ((2023 - 1980) << 9) | (11 << 5) | 14);
  t.true(img.includes(a) && img.includes(b));
  t.deepEqual(fatImage([{ path: 'EFI/BOOT/BOOTX64.EFI', data: a }, { path: 'zos/vmlinuz', data: b }], { mtime: 1_700_000_000, serial: 0x12345678, label: 'TESTVOL' }), img);
  t.is(fatTime(0).date, (1 << 5) | 1, 'dates before 1980 are 1980-01-01');
});

test('FAT16 grows its clusters with the data and refuses what it cannot hold or name', (t) => {
  const big = fatLayout([{ path: 'A.BIN', size: 200 * 1024 * 1024 }]);
  t.true(big.size >= 200 * 1024 * 1024);
  t.throws(() => fatLayout([{ path: 'A.BIN', size: 3 * 1024 ** 3 }]), { instanceOf: MediaInputError, message: /FAT16 holds at most/ });
  t.throws(() => fatLayout([{ path: 'toolongname.efi', size: 1 }]), { instanceOf: MediaInputError, message: /not an 8\.3 name/ });
  t.throws(() => fatLayout([{ path: 'Mixed.EFI', size: 1 }]), { instanceOf: MediaInputError, message: /mixes upper and lower case/ });
  t.throws(() => fatLayout([{ path: 'A/B', size: 1 }, { path: 'a/b', size: 1 }]), { instanceOf: MediaInputError, message: /listed twice/ });
});

test('the command line: trimmed; quotes, $, backslash, newline and an over-long line are refused', (t) => {
  t.is(checkCmdline('  console=ttyS0 farmer_id=7 '), 'console=ttyS0 farmer_id=7');
  for (const bad of ['a="b c"', "a='b'", 'a=$x', 'a\\b', 'a\nb', 'a;reboot', 'a={b}', 'a\u00e9']) {
    t.throws(() => checkCmdline(bad), { instanceOf: MediaInputError }, JSON.stringify(bad));
  }
  t.throws(() => checkCmdline('x'.repeat(MAX_CMDLINE + 1)), { instanceOf: MediaInputError, message: /at most 2047/ });
  t.notThrows(() => checkCmdline('x'.repeat(MAX_CMDLINE)));
  const k = Buffer.alloc(0x300);
  t.false(isBzImage(k));
  k.write('HdrS', 0x202, 'latin1');
  t.true(isBzImage(k));
});

test('QEMU from a medium: CD and USB get bootindex 0 and the NICs neither a ROM nor a boot entry; an EFI program needs UEFI', (t) => {
  const bios = parseProfile({ name: 'b', firmware: 'bios', nics: [{ model: 'virtio' }] });
  const uefi = parseProfile({ name: 'u', firmware: 'uefi', nics: [{ model: 'virtio' }] });
  const plan = (p: typeof bios, kind: 'cdrom' | 'usb' | 'efi') => ({ instance: instanceOf(p, 0), taps: ['tap0'], disks: [], varsFile: '/w/vars.fd', accel: 'tcg' as const, medium: { kind, path: '/m/x,y.img' } });
  const cd = qemuArgs(plan(bios, 'cdrom'));
  t.false(cd.includes('-boot'), 'no -boot n');
  t.true(cd.includes('if=none,id=medium,file=/m/x,,y.img,media=cdrom,readonly=on'));
  t.true(cd.includes('ide-cd,drive=medium,bootindex=0'));
  const nic = cd.find((a) => a.startsWith('virtio-net-pci'))!;
  t.regex(nic, /romfile=(,|$)/);
  t.notRegex(nic, /bootindex/);
  const usb = qemuArgs(plan(uefi, 'usb'));
  t.true(usb.includes('if=none,id=medium,file=/m/x,,y.img,format=raw,snapshot=on'), 'the image file is never written');
  t.true(usb.some((a) => a.startsWith('usb-storage,bus=xhci.0,drive=medium') && a.includes('bootindex=0')));
  const efi = qemuArgs(plan(uefi, 'efi'));
  t.deepEqual(efi.slice(efi.indexOf('-kernel'), efi.indexOf('-kernel') + 2), ['-kernel', '/m/x,y.img']);
  t.throws(() => qemuArgs(plan(bios, 'efi')), { instanceOf: QemuArgsError, message: /only with UEFI firmware/ });
  const net = qemuArgs({ ...plan(bios, 'cdrom'), medium: undefined });
  t.deepEqual(net.slice(net.indexOf('-boot'), net.indexOf('-boot') + 2), ['-boot', 'n'], 'without a medium: network boot as before');
});
