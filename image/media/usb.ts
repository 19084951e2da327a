// The USB image zos-usb.img: an MBR disk with one FAT16 partition (type
// 0xEF, active) from 1 MiB. UEFI starts EFI/BOOT/BOOTX64.EFI on it (the
// UKI); BIOS runs GRUB's boot.img from the MBR, which loads core.img from
// the sectors before the partition, which reads zos/vmlinuz and
// zos/initrd.img from the FAT (grub-bios.ts). Fixed disk signature, fixed
// FAT serial and dates: two builds give the same bytes.
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { writeFat } from './fat-file.ts';
import { grubBiosStage, grubConfig, MBR_CODE_BYTES } from './grub-bios.ts';
import { loadInput } from './input.ts';
import type { MediaInput } from './input.ts';
import { EFI_BOOT_PATH, MEDIA_INITRD, MEDIA_KERNEL, mediaTime } from './options.ts';
import type { MediaOptions } from './options.ts';
import { readStub, ukiBytes } from './uki.ts';

const SECTOR = 512;
export const PARTITION_START = 2048;
const MIB = 1024 * 1024;
const DISK_SIGNATURE = 0x5a0b0070;

/** The MBR: boot code, disk signature, one active partition of `sectors` from PARTITION_START. */
export function mbr(code: Buffer, sectors: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  code.copy(m, 0, 0, MBR_CODE_BYTES);
  m.writeUInt32LE(DISK_SIGNATURE, 440);
  const p = 446;
  m[p] = 0x80;
  // CHS fields past what CHS can address: firmware uses the LBA fields.
  m.set([0xfe, 0xff, 0xff], p + 1);
  m[p + 4] = 0xef;
  m.set([0xfe, 0xff, 0xff], p + 5);
  m.writeUInt32LE(PARTITION_START, p + 8);
  m.writeUInt32LE(sectors, p + 12);
  m.writeUInt16LE(0xaa55, 510);
  return m;
}

export async function buildUsb(input: MediaInput, outPath: string, opts: MediaOptions = {}): Promise<void> {
  const loaded = await loadInput(input);
  const mtime = mediaTime(opts);
  const stage = await grubBiosStage(grubConfig(`/${MEDIA_KERNEL}`, `/${MEDIA_INITRD}`, loaded.cmdline), opts.tools);
  const uki = ukiBytes(await readStub(opts.stub), loaded);
  const tmp = `${outPath}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    const base = PARTITION_START * SECTOR;
    const files = [
      { path: EFI_BOOT_PATH, data: uki },
      { path: MEDIA_KERNEL, data: loaded.kernel },
      { path: MEDIA_INITRD, data: loaded.initrd },
    ];
    const fsBytes = await writeFat(fh, base, files, { mtime, label: 'ZEROBOOT', hiddenSectors: PARTITION_START });
    // Whole MiBs: what a stick's size and dd like.
    const total = Math.ceil((base + fsBytes) / MIB) * MIB;
    await fh.truncate(total);
    await fh.write(mbr(stage.mbrCode, fsBytes / SECTOR), 0, SECTOR, 0);
    await fh.write(stage.core, 0, stage.core.length, SECTOR);
    await fh.close();
    await rename(tmp, outPath);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}
