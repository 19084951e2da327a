// A unified kernel image: systemd's EFI stub with the kernel, initramfs and
// command line as PE sections (.osrel, .cmdline, .initrd, .linux). Firmware
// and iPXE start it as any EFI program; the stub hands the kernel its
// embedded initramfs and command line. Written with our own PE writer
// (pe-sections.ts) rather than objcopy: no temporary files, no tool
// version in the bytes, a few milliseconds per build.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { addPeSections } from './pe-sections.ts';
import { PeFormatError } from '../pe-signature.ts';
import { MediaToolError, MediaInputError } from './errors.ts';
import { loadInput } from './input.ts';
import { fatImage } from './fat.ts';
import { EFI_BOOT_PATH, mediaTime } from './options.ts';
import type { MediaOptions } from './options.ts';
import type { LoadedInput, MediaInput } from './input.ts';

/** Debian's systemd-boot-efi package puts its stub here. */
export const DEFAULT_EFI_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

export interface UkiOptions {
  /** The systemd EFI stub (default: Debian's). */
  stub?: string;
  /** The os-release text for .osrel (boot menus show its PRETTY_NAME). */
  osRelease?: string;
}

const OS_RELEASE = 'ID=zeroboot\nNAME=zeroboot\nPRETTY_NAME="zeroboot node image"\n';

export async function readStub(path = DEFAULT_EFI_STUB): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MediaToolError(`systemd's EFI stub ${path} is missing: install Debian's systemd-boot-efi (apt-get install systemd-boot-efi)`);
    throw new MediaToolError(`cannot read the EFI stub ${path}: ${(err as Error).message}`);
  }
}

/** The UKI bytes for loaded inputs. */
export function ukiBytes(stub: Buffer, input: LoadedInput, osRelease = OS_RELEASE): Buffer {
  try {
    return addPeSections(stub, [
      { name: '.osrel', data: Buffer.from(osRelease) },
      { name: '.cmdline', data: Buffer.from(input.cmdline) },
      { name: '.initrd', data: input.initrd },
      { name: '.linux', data: input.kernel },
    ]);
  } catch (err) {
    if (err instanceof PeFormatError) throw new MediaInputError(`EFI stub: ${err.message}`);
    throw err;
  }
}

/** Writes the file through a temporary name, so a reader never sees half of it. */
export async function writeWhole(outPath: string, data: Uint8Array): Promise<void> {
  const tmp = `${outPath}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, outPath);
}

/** Builds zos.efi: the stub with `input` embedded. */
export async function buildUki(input: MediaInput, outPath: string, opts: UkiOptions = {}): Promise<void> {
  const loaded = await loadInput(input);
  const stub = await readStub(opts.stub);
  await writeWhole(outPath, ukiBytes(stub, loaded, opts.osRelease));
}

/** A FAT file system holding the UKI where removable-media firmware looks (the ISO's El Torito EFI image, `uefimg`). */
export function efiFat(uki: Uint8Array, mtime: number): Buffer {
  return fatImage([{ path: EFI_BOOT_PATH, data: uki }], { mtime, label: 'ZEROBOOTEFI' });
}

/** The bootstrap service's `uefimg`: a small FAT image holding the UKI as EFI/BOOT/BOOTX64.EFI, for a stick or a VM's disk. */
export async function buildUefiImg(input: MediaInput, outPath: string, opts: MediaOptions = {}): Promise<void> {
  const loaded = await loadInput(input);
  const uki = ukiBytes(await readStub(opts.stub), loaded);
  await writeWhole(outPath, efiFat(uki, mediaTime(opts)));
}
