// The media builders against real readers: objdump/objcopy read the UKI's
// sections, xorriso reads the ISO's El Torito catalog and files, sfdisk the
// USB image's partition table, fsck.fat and mtools the FAT file systems.
// A synthetic kernel (a buffer with the bzImage "HdrS" header) keeps the
// builds fast; booting the real thing is test/e2e/media-boot.test.ts.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildIso, buildUefiImg, buildUki, buildUsb, MediaInputError, MediaToolError } from '../../image/media/index.ts';
import { runTool } from '../../image/media/tools.ts';
import type { MediaInput } from '../../image/media/index.ts';
import { GRUB_PC_DIR } from '../../image/media/grub-bios.ts';

const run = promisify(execFile);
const CMDLINE = 'console=ttyS0 nomodeset version=v3 runmode=test panic=7200 farmer_id=42 zos-debug';
let dir = '';
let input: MediaInput;
let kernel: Buffer;
let initrd: Buffer;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zb-media-'));
  kernel = Buffer.alloc(300_000);
  for (let i = 0; i < kernel.length; i++) kernel[i] = (i * 7919) & 0xff;
  kernel.write('MZ', 0, 'latin1');
  kernel.write('HdrS', 0x202, 'latin1');
  initrd = Buffer.alloc(123_457, 0x5a);
  await writeFile(join(dir, 'vmlinuz'), kernel);
  await writeFile(join(dir, 'initrd'), initrd);
  input = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd'), cmdline: CMDLINE };
  await buildUki(input, join(dir, 'ref.efi'));
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function section(file: string, name: string): Promise<Buffer> {
  const out = `${file}${name}.bin`;
  await run('objcopy', ['-O', 'binary', `--only-section=${name}`, file, out]);
  return readFile(out);
}

/** Builds twice, the second time with the inputs' mtimes changed: the bytes must not move. */
async function twice(build: (i: MediaInput, out: string) => Promise<void>, name: string): Promise<[Buffer, Buffer]> {
  await build(input, join(dir, `${name}.1`));
  await utimes(input.kernel, 1_234_567, 1_234_567);
  await utimes(input.initrd, new Date(), new Date());
  await build(input, join(dir, `${name}.2`));
  return [await readFile(join(dir, `${name}.1`)), await readFile(join(dir, `${name}.2`))];
}

test('UKI: objdump sees .osrel .cmdline .initrd .linux; objcopy reads back the command line, kernel and initrd; two builds, same bytes', async (t) => {
  const [a, b] = await twice(buildUki, 'zos.efi');
  t.is(sha(a), sha(b));
  t.deepEqual(a, await readFile(join(dir, 'ref.efi')));
  const file = join(dir, 'zos.efi.1');
  const { stdout } = await run('objdump', ['-h', file]);
  for (const s of ['.osrel', '.cmdline', '.initrd', '.linux']) t.regex(stdout, new RegExp(` \\${s} `), s);
  t.regex(stdout, /file format pei-x86-64/);
  t.is((await section(file, '.cmdline')).toString(), CMDLINE);
  t.true((await section(file, '.linux')).subarray(0, kernel.length).equals(kernel));
  t.true((await section(file, '.initrd')).subarray(0, initrd.length).equals(initrd));
  t.regex((await section(file, '.osrel')).toString(), /^ID=zeroboot$/m);
});

test('ISO: El Torito BIOS (isolinux) and UEFI (a FAT image holding the UKI), the command line in isolinux.cfg, hybrid MBR+GPT; same bytes twice', async (t) => {
  const [a, b] = await twice(buildIso, 'zos.iso');
  t.is(sha(a), sha(b));
  const iso = join(dir, 'zos.iso.1');
  const { stdout: report } = await run('xorriso', ['-indev', iso, '-report_el_torito', 'plain', '-report_system_area', 'plain'], { encoding: 'utf8' });
  t.regex(report, /El Torito boot img : +1 +BIOS +y +none/);
  t.regex(report, /El Torito boot img : +2 +UEFI +y +none/);
  t.regex(report, /El Torito img path : +1 +\/isolinux\/isolinux\.bin/);
  t.regex(report, /El Torito img path : +2 +\/EFI\/efiboot\.img/);
  t.regex(report, /MBR partition path : +2 +\/EFI\/efiboot\.img/);
  t.regex(report, /GPT partition path : +2 +\/EFI\/efiboot\.img/);
  const out = join(dir, 'iso-x');
  await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
  t.regex(await readFile(join(out, 'isolinux/isolinux.cfg'), 'utf8'), new RegExp(`^  APPEND ${CMDLINE}$`, 'm'));
  t.deepEqual(await readFile(join(out, 'zos/vmlinuz')), kernel);
  t.deepEqual(await readFile(join(out, 'zos/initrd.img')), initrd);
  const efi = join(out, 'EFI/efiboot.img');
  await run('fsck.fat', ['-n', efi]);
  const { stdout: bootx } = await run('mtype', ['-i', efi, '::/EFI/BOOT/BOOTX64.EFI'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  t.deepEqual(bootx, await readFile(join(dir, 'ref.efi')), 'the UKI of buildUki');
  const epoch = join(dir, 'zos-epoch.iso');
  await buildIso(input, epoch, { mtime: 1_700_000_000 });
  t.not(sha(await readFile(epoch)), sha(a), 'the build time is in the image');
});

test('USB: one active 0xEF partition from 1 MiB, a clean FAT with the UKI, kernel and initrd, GRUB in the MBR and the gap; same bytes twice', async (t) => {
  const [a, b] = await twice(buildUsb, 'zos-usb.img');
  t.is(sha(a), sha(b));
  t.is(a.length % (1024 * 1024), 0, 'whole MiBs');
  const img = join(dir, 'zos-usb.img.1');
  const { stdout } = await run('sfdisk', ['--json', img], { encoding: 'utf8' });
  const table = JSON.parse(stdout).partitiontable;
  t.is(table.label, 'dos');
  t.is(table.partitions.length, 1);
  t.like(table.partitions[0], { start: 2048, type: 'ef', bootable: true });
  const part = join(dir, 'usb-part.img');
  await writeFile(part, a.subarray(2048 * 512, (2048 + table.partitions[0].size) * 512));
  await run('fsck.fat', ['-n', part]);
  const cat = async (p: string) => (await run('mtype', ['-i', part, `::/${p}`], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
  t.deepEqual(await cat('EFI/BOOT/BOOTX64.EFI'), await readFile(join(dir, 'ref.efi')));
  t.deepEqual(await cat('zos/vmlinuz'), kernel);
  t.deepEqual(await cat('zos/initrd.img'), initrd);
  const { stdout: listing } = await run('mdir', ['-i', part, '-b', '::/zos'], { encoding: 'utf8' });
  t.deepEqual(listing.trim().split('\n').sort(), ['::/zos/initrd.img', '::/zos/vmlinuz'], 'lowercase names kept');
  const bootImg = await readFile(join(GRUB_PC_DIR, 'boot.img'));
  t.deepEqual(a.subarray(0x68, 0x1b8), bootImg.subarray(0x68, 0x1b8), 'GRUB boot.img code in the MBR');
  t.is(a.readBigUInt64LE(0x5c), 1n, 'core.img at sector 1');
  t.is(a.readUInt16LE(0x66), 0x9090, 'the hard-disk drive check, as grub-bios-setup sets it');
  const diskboot = await readFile(join(GRUB_PC_DIR, 'diskboot.img'));
  t.deepEqual(a.subarray(512, 512 + 0x100), diskboot.subarray(0, 0x100), 'core.img from sector 1');
});

test('uefimg: a clean FAT image holding only the UKI at EFI/BOOT/BOOTX64.EFI; same bytes twice', async (t) => {
  const [a, b] = await twice(buildUefiImg, 'uefi.img');
  t.is(sha(a), sha(b));
  const img = join(dir, 'uefi.img.1');
  await run('fsck.fat', ['-n', img]);
  const { stdout: bootx } = await run('mtype', ['-i', img, '::/EFI/BOOT/BOOTX64.EFI'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  t.deepEqual(bootx, await readFile(join(dir, 'ref.efi')));
  const { stdout: all } = await run('mdir', ['-i', img, '-/', '-b', '::/'], { encoding: 'utf8' });
  t.deepEqual(all.trim().split('\n').sort(), ['::/EFI/', '::/EFI/BOOT/', '::/EFI/BOOT/BOOTX64.EFI']);
});

test('a tool that fails: the error names the line that says why, not xorriso\'s banner', async (t) => {
  // xorriso writes its banner first, then why it stopped.
  await t.throwsAsync(runTool('xorriso', ['-outdev', join(dir, 'no-such-dir', 'x.iso')]), {
    instanceOf: MediaToolError,
    message: /^xorriso failed: libburn : SORRY : Neither stdio-path nor its directory exist$/,
  });
  await t.throwsAsync(runTool('grub-mkimage', ['-O', 'i386-pc', '-p', '/boot', '-o', join(dir, 'x.img'), '-d', join(dir, 'no-modules'), 'normal']), {
    instanceOf: MediaToolError,
    message: /^grub-mkimage failed: grub-mkimage: error: cannot open `.*no-modules\/moddep\.lst'/,
  });
});

test('missing tools and inputs: one clear error naming what to install or fix, and no output file', async (t) => {
  const fails = await mkdtemp(join(dir, 'fail-'));
  const out = join(fails, 'out');
  await t.throwsAsync(buildIso(input, `${out}.iso`, { tools: { path: '/nonexistent' } }), { instanceOf: MediaToolError, message: 'xorriso is not installed (apt-get install xorriso)' });
  await t.throwsAsync(buildUsb(input, `${out}.img`, { tools: { path: '/nonexistent' } }), { instanceOf: MediaToolError, message: 'grub-mkimage is not installed (apt-get install grub-common)' });
  await t.throwsAsync(buildUki(input, `${out}.efi`, { stub: join(dir, 'no-stub') }), { instanceOf: MediaToolError, message: /EFI stub .*no-stub is missing: install Debian's systemd-boot-efi/ });
  await t.throwsAsync(buildUki({ ...input, kernel: join(dir, 'nope') }, `${out}.efi`), { instanceOf: MediaInputError, message: /^kernel .*nope: no such file$/ });
  await t.throwsAsync(buildIso({ ...input, kernel: input.initrd }, `${out}.iso`), { instanceOf: MediaInputError, message: /not an x86 Linux kernel/ });
  await t.throwsAsync(buildUsb({ ...input, cmdline: 'a "b"' }, `${out}.img`), { instanceOf: MediaInputError, message: /has "\\"" at 2/ });
  t.deepEqual(await readdir(fails), [], 'no output, no temporary file left');
});
