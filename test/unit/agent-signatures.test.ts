import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isZero, PROBE_BYTES, probeSignatures, type ProbeRegions } from '../../agent/disks/signatures.ts';
import { blkidFinding, parseBlkidExport } from '../../agent/inventory/blkid.ts';

const MiB = 1024 * 1024;
const FIX = join(import.meta.dirname, '../fixtures/agent/blkid');

/** A device of `size` bytes, zero but for `writes` at absolute offsets. */
function device(size: number, writes: [number, Buffer | string][]): ProbeRegions {
  const head = Buffer.alloc(Math.min(size, PROBE_BYTES));
  const tail = Buffer.alloc(Math.min(size, PROBE_BYTES));
  for (const [offset, data] of writes) {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (offset < head.length) b.copy(head, offset);
    const t = offset - (size - tail.length);
    if (t >= 0) b.copy(tail, t);
  }
  return { head, tail, size };
}

const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: number, le: boolean) => {
  const b = Buffer.alloc(8);
  if (le) b.writeBigUInt64LE(BigInt(n));
  else b.writeBigUInt64BE(BigInt(n));
  return b;
};
const reasons = (r: ProbeRegions) => probeSignatures(r).map((f) => f.reason);
const SIZE = 100 * MiB + 12345 * 512;

test('md raid superblocks of every version, where mdadm puts them', (t) => {
  t.deepEqual(reasons(device(SIZE, [[4096, u32le(0xa92b4efc)]])), ['linux raid (md 1.2) signature']);
  t.deepEqual(reasons(device(SIZE, [[0, u32le(0xa92b4efc)]])), ['linux raid (md 1.1) signature']);
  const sectors = SIZE / 512;
  t.deepEqual(reasons(device(SIZE, [[((sectors - 16) & ~7) * 512, u32le(0xa92b4efc)]])), ['linux raid (md 1.0) signature']);
  t.deepEqual(reasons(device(SIZE, [[(Math.floor(SIZE / 65536) - 1) * 65536, u32le(0xa92b4efc)]])), ['linux raid (md 0.90) signature']);
});

test('zfs uberblocks in the front and back labels, either byte order', (t) => {
  t.deepEqual(reasons(device(SIZE, [[128 * 1024 + 5 * 1024, u64(0x00bab10c, true)]])), ['zfs member signature']);
  t.deepEqual(reasons(device(SIZE, [[SIZE - 256 * 1024 + 128 * 1024, u64(0x00bab10c, false)]])), ['zfs member signature']);
});

test('ntfs and vfat boot sectors are filesystems, not MBR partition tables', (t) => {
  const bootSig = Buffer.from([0x55, 0xaa]);
  t.deepEqual(reasons(device(SIZE, [[0, Buffer.from([0xeb, 0x52, 0x90])], [3, 'NTFS    '], [446 + 4, Buffer.from([7])], [510, bootSig]])), ['ntfs signature']);
  t.deepEqual(reasons(device(SIZE, [[0, Buffer.from([0xeb, 0x58, 0x90])], [82, 'FAT32   '], [510, bootSig]])), ['vfat signature']);
  // A boot sector with 55 AA but no partition: boot code only, still not blank.
  t.deepEqual(reasons(device(SIZE, [[0, Buffer.from([0xfa, 0x31])], [510, bootSig]])), ['unrecognised data (first non-zero byte at 0)']);
  // A protective MBR is reported as the GPT behind it.
  t.deepEqual(reasons(device(SIZE, [[446 + 4, Buffer.from([0xee])], [510, bootSig], [512, 'EFI PART']])), ['gpt partition table']);
  t.deepEqual(reasons(device(SIZE, [[4096, 'EFI PART']])), ['gpt partition table']);
});

test('lvm2, iso9660, LUKS and a swap page of 64 KiB', (t) => {
  t.deepEqual(reasons(device(SIZE, [[512, 'LABELONE'], [512 + 24, 'LVM2 001']])), ['lvm2 physical volume signature']);
  t.deepEqual(reasons(device(SIZE, [[0x8001, 'CD001']])), ['iso9660 signature']);
  t.deepEqual(reasons(device(SIZE, [[0, 'LUKS\xba\xbe']])), ['luks encryption header']);
  t.deepEqual(reasons(device(SIZE, [[65536 - 10, 'SWAPSPACE2']])), ['swap signature']);
});

test('several structures are all reported; zeroes are blank; tiny devices are probed whole', (t) => {
  t.deepEqual(reasons(device(SIZE, [[512, 'EFI PART'], [0x10040, '_BHRfS_M']])), ['gpt partition table', 'btrfs signature']);
  t.true(isZero(device(SIZE, [])));
  t.deepEqual(reasons(device(SIZE, [])), []);
  t.deepEqual(reasons(device(4096, [[4000, 'x']])), ['unrecognised data (first non-zero byte at 4000)']);
});

test('recorded blkid -p output reads in the same words', (t) => {
  const read = (n: string) => parseBlkidExport(readFileSync(join(FIX, n), 'utf8'));
  t.is(blkidFinding(read('gpt.txt')), 'gpt partition table');
  t.is(read('ext4-labelled.txt').LABEL, 'my data');
  t.is(blkidFinding(read('ext4-labelled.txt')), 'ext4 signature');
  t.is(blkidFinding(read('luks2.txt')), 'crypto_LUKS signature');
});
