// .modinfo parsing against real modules of the Debian kernel package,
// fetched through the builder's cache; objcopy (binutils) extracts the
// section independently for comparison.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { elfSection, parseModinfo, ElfError } from '../../image/elf-modinfo.ts';
import { testKernel } from '../helpers/image-kernel.ts';
import type { TestKernel } from '../helpers/image-kernel.ts';

const run = promisify(execFile);
let kernel: TestKernel;
let modDir: string;

test.before(async () => {
  kernel = await testKernel();
  modDir = join(kernel.tree, 'lib/modules', kernel.release);
});

test('virtio_net: name, depends, aliases and vermagic', async (t) => {
  const info = parseModinfo(await readFile(join(modDir, 'kernel/drivers/net/virtio_net.ko')));
  t.is(info.name, 'virtio_net');
  t.deepEqual([...info.depends].sort(), ['net_failover', 'virtio', 'virtio_ring']);
  t.true(info.aliases.includes('virtio:d00000001v*'));
  t.true(info.vermagic.startsWith(`${kernel.release} SMP `), info.vermagic);
  t.is(info.fields.license?.[0], 'GPL');
});

test('the .modinfo bytes equal what objcopy extracts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zb-modinfo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const rel of ['kernel/drivers/net/virtio_net.ko', 'kernel/drivers/net/ethernet/intel/e1000/e1000.ko', 'kernel/drivers/scsi/sd_mod.ko']) {
    const out = join(dir, 'section.bin');
    await run('objcopy', ['-O', 'binary', '--only-section=.modinfo', join(modDir, rel), out]);
    t.deepEqual(elfSection(await readFile(join(modDir, rel)), '.modinfo'), await readFile(out), rel);
  }
});

test('every network driver module parses and names itself after its file', async (t) => {
  const base = join(modDir, 'kernel/drivers/net');
  const files = (await readdir(base, { recursive: true })).filter((f) => f.endsWith('.ko'));
  t.true(files.length > 100, `only ${files.length} modules`);
  for (const f of files) {
    const info = parseModinfo(await readFile(join(base, f)));
    t.is(info.name, f.slice(f.lastIndexOf('/') + 1, -3).replace(/-/g, '_'), f);
    t.true(info.vermagic.startsWith(kernel.release + ' '), f);
  }
});

test('softdep words split into pre and post', (t) => {
  // A minimal ELF64 with a .modinfo section, built by hand.
  const modinfo = Buffer.from('name=x\0softdep=pre: crc32c post: y\0depends=\0\0\0');
  t.deepEqual(parseModinfo(tinyElf(modinfo)).softdep, { pre: ['crc32c'], post: ['y'] });
  t.deepEqual(parseModinfo(tinyElf(modinfo)).depends, []);
});

test('non-modules are refused with ElfError', async (t) => {
  t.throws(() => parseModinfo(Buffer.from('not an elf file at all, just text, long enough to have a header.........')), { instanceOf: ElfError, message: /bad magic/ });
  const busybox = await readFile('/bin/busybox');
  t.throws(() => parseModinfo(busybox), { instanceOf: ElfError, message: /no \.modinfo/ });
  const ko = await readFile(join(modDir, 'kernel/drivers/net/virtio_net.ko'));
  t.throws(() => parseModinfo(ko.subarray(0, 4096)), { instanceOf: ElfError });
  const elf32 = Buffer.from(ko);
  elf32[4] = 1;
  t.throws(() => parseModinfo(elf32), { instanceOf: ElfError, message: /64-bit/ });
});

/** ELF64 LE: null section, .modinfo, .shstrtab. */
function tinyElf(modinfo: Buffer): Buffer {
  const shstrtab = Buffer.from('\0.modinfo\0.shstrtab\0');
  const dataOff = 64;
  const strOff = dataOff + modinfo.length;
  const shoff = Math.ceil((strOff + shstrtab.length) / 8) * 8;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = 2;
  buf[5] = 1;
  buf[6] = 1;
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x3a);
  buf.writeUInt16LE(3, 0x3c);
  buf.writeUInt16LE(2, 0x3e);
  modinfo.copy(buf, dataOff);
  shstrtab.copy(buf, strOff);
  const sh = (i: number, name: number, type: number, off: number, size: number) => {
    const at = shoff + i * 64;
    buf.writeUInt32LE(name, at);
    buf.writeUInt32LE(type, at + 4);
    buf.writeBigUInt64LE(BigInt(off), at + 0x18);
    buf.writeBigUInt64LE(BigInt(size), at + 0x20);
  };
  sh(1, 1, 1, dataOff, modinfo.length);
  sh(2, 10, 3, strOff, shstrtab.length);
  return buf;
}
