// The BIOS stage of the USB image: GRUB's boot.img in the MBR and a core.img
// in the gap before the first partition (sectors 1..2047), what grub-install
// would write, done by hand so no device or loop mount is needed. core.img
// carries its whole configuration (linux, initrd, boot) and the modules to
// read the FAT partition of the boot drive, so it needs no grub.cfg and no
// `normal` module. grub-mkimage's output depends only on its inputs.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaInputError } from './errors.ts';
import { requireFile, runTool } from './tools.ts';
import type { ToolOptions } from './tools.ts';

export const GRUB_PC_DIR = '/usr/lib/grub/i386-pc';
const MODULES = ['biosdisk', 'part_msdos', 'fat', 'linux', 'boot'];
/** core.img must end before the first partition (LBA 2048). */
export const CORE_MAX_BYTES = 2047 * 512;
// boot.img fields grub-bios-setup fills (grub/i386/pc/boot.h).
const KERNEL_SECTOR = 0x5c;
const BOOT_DRIVE = 0x64;
const DRIVE_CHECK = 0x66;
// Where the MBR's partition table starts (boot code ends at the disk signature, 440).
export const MBR_CODE_BYTES = 440;

export interface GrubBiosStage {
  /** The first 440 bytes of the MBR. */
  mbrCode: Buffer;
  /** Written from LBA 1. */
  core: Buffer;
}

/** The embedded configuration: boot `kernel` and `initrd` (paths on the FAT) with `cmdline`. */
export function grubConfig(kernel: string, initrd: string, cmdline: string): string {
  return [`linux ${kernel} ${cmdline}`.trimEnd(), `initrd ${initrd}`, 'boot', ''].join('\n');
}

export async function grubBiosStage(config: string, opts: ToolOptions & { grubDir?: string } = {}): Promise<GrubBiosStage> {
  const dir = await requireFile(opts.grubDir ?? GRUB_PC_DIR);
  const bootImg = await readFile(join(dir, 'boot.img'));
  const work = await mkdtemp(join(tmpdir(), 'zb-grub-'));
  try {
    await writeFile(join(work, 'embedded.cfg'), config);
    // (,msdos1): the first partition of the drive the BIOS booted from.
    await runTool('grub-mkimage', ['-O', 'i386-pc', '-d', dir, '-c', join(work, 'embedded.cfg'), '-p', '(,msdos1)/boot/grub', '-o', join(work, 'core.img'), ...MODULES], opts);
    const core = await readFile(join(work, 'core.img'));
    if (core.length > CORE_MAX_BYTES) throw new MediaInputError(`GRUB's core.img is ${core.length} bytes; it must fit in the ${CORE_MAX_BYTES} bytes before the first partition`);
    const mbrCode = Buffer.from(bootImg.subarray(0, MBR_CODE_BYTES));
    mbrCode.writeBigUInt64LE(1n, KERNEL_SECTOR);
    mbrCode[BOOT_DRIVE] = 0xff;
    // grub-bios-setup does this for a hard disk: trust the BIOS's drive number.
    mbrCode.writeUInt16LE(0x9090, DRIVE_CHECK);
    return { mbrCode, core };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
