// The hybrid ISO zos.iso: BIOS boots it through isolinux (El Torito, and
// from a USB stick through isohdpfx's MBR), UEFI through an El Torito EFI
// image, a FAT file system holding the UKI as EFI/BOOT/BOOTX64.EFI (also a
// GPT partition, for a stick). xorriso writes it; every date is the build
// time given (SOURCE_DATE_EPOCH), the volume id is fixed, so two builds
// give the same bytes.
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadInput } from './input.ts';
import type { MediaInput } from './input.ts';
import { MEDIA_INITRD, MEDIA_KERNEL, mediaTime } from './options.ts';
import type { MediaOptions } from './options.ts';
import { requireFile, runTool } from './tools.ts';
import { efiFat, readStub, ukiBytes } from './uki.ts';

export const ISOLINUX_DIR = '/usr/lib/ISOLINUX';
export const SYSLINUX_BIOS_DIR = '/usr/lib/syslinux/modules/bios';
export const ISO_VOLUME_ID = 'ZEROBOOT';
const EFI_IMAGE = 'EFI/efiboot.img';

export function isolinuxConfig(cmdline: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT zos',
    'PROMPT 0',
    'TIMEOUT 0',
    'LABEL zos',
    `  LINUX /${MEDIA_KERNEL}`,
    `  INITRD /${MEDIA_INITRD}`,
    `  APPEND ${cmdline}`,
    '',
  ].join('\n');
}

/** xorriso's date format for --modification-date: YYYYMMDDhhmmsscc, UTC. */
function isoDate(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14) + '00';
}

/** Sets every file's and directory's dates below `dir` (directories after their contents). */
async function stampTree(dir: string, mtime: number): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await stampTree(join(dir, e.name), mtime);
    else await utimes(join(dir, e.name), mtime, mtime);
  }
  await utimes(dir, mtime, mtime);
}

export async function buildIso(input: MediaInput, outPath: string, opts: MediaOptions = {}): Promise<void> {
  const loaded = await loadInput(input);
  const mtime = mediaTime(opts);
  const [isolinux, mbr, ldlinux] = await Promise.all([
    requireFile(join(ISOLINUX_DIR, 'isolinux.bin')),
    requireFile(join(ISOLINUX_DIR, 'isohdpfx.bin')),
    requireFile(join(SYSLINUX_BIOS_DIR, 'ldlinux.c32')),
  ]);
  const uki = ukiBytes(await readStub(opts.stub), loaded);
  const work = await mkdtemp(join(dirname(outPath), '.zb-iso-'));
  try {
    // A staging tree with every date set: xorriso keeps the dates of what it reads (directories included).
    const tree = join(work, 'tree');
    const put = async (path: string, data: Uint8Array | { from: string }) => {
      await mkdir(dirname(join(tree, path)), { recursive: true });
      if (data instanceof Uint8Array) await writeFile(join(tree, path), data);
      else await copyFile(data.from, join(tree, path));
    };
    await put(EFI_IMAGE, efiFat(uki, mtime));
    await put('isolinux/isolinux.bin', { from: isolinux });
    await put('isolinux/ldlinux.c32', { from: ldlinux });
    await put('isolinux/isolinux.cfg', Buffer.from(isolinuxConfig(loaded.cmdline)));
    await put(MEDIA_KERNEL, loaded.kernel);
    await put(MEDIA_INITRD, loaded.initrd);
    await stampTree(tree, mtime);
    const tmpOut = join(work, 'out.iso');
    await runTool('xorriso', [
      '-as', 'mkisofs', '-quiet', '-o', tmpOut,
      '-iso-level', '3', '-r', '-V', ISO_VOLUME_ID,
      '--modification-date=' + isoDate(mtime),
      '-isohybrid-mbr', mbr,
      '-c', 'isolinux/boot.cat', '-b', 'isolinux/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
      '-eltorito-alt-boot', '-e', EFI_IMAGE, '-no-emul-boot', '-isohybrid-gpt-basdat',
      tree,
    // SOURCE_DATE_EPOCH: xorriso derives the volume dates and the GPT and volume UUIDs from it.
    ], { ...opts.tools, env: { ...opts.tools?.env, SOURCE_DATE_EPOCH: String(mtime) } });
    await rename(tmpOut, outPath);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
