// All three media of an image, under the names `zeroboot image build`
// writes them (DESIGN.md). Built one after the other: each is mostly
// copying the same kernel and initramfs.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildIso } from './iso.ts';
import type { MediaInput } from './input.ts';
import type { MediaOptions } from './options.ts';
import { runTool } from './tools.ts';
import { buildUki, DEFAULT_EFI_STUB } from './uki.ts';
import { ISOLINUX_DIR } from './iso.ts';
import { buildUsb } from './usb.ts';

export const UKI_FILE = 'zos.efi';
export const ISO_FILE = 'zos.iso';
export const USB_FILE = 'zos-usb.img';

/** Writes zos.efi, zos.iso and zos-usb.img into `dir`; returns their names. */
export async function buildMedia(input: MediaInput, dir: string, opts: MediaOptions = {}): Promise<string[]> {
  await buildUki(input, join(dir, UKI_FILE), opts);
  await buildIso(input, join(dir, ISO_FILE), opts);
  await buildUsb(input, join(dir, USB_FILE), opts);
  return [UKI_FILE, ISO_FILE, USB_FILE];
}

/** What the media bytes depend on besides the inputs: the stub and isolinux (sha256) and the tools' versions. */
export async function mediaTools(opts: MediaOptions = {}): Promise<Record<string, string>> {
  const hash = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');
  const first = (text: string) => text.split('\n')[0].trim();
  return {
    efiStub: await hash(opts.stub ?? DEFAULT_EFI_STUB),
    isolinux: await hash(join(ISOLINUX_DIR, 'isolinux.bin')),
    xorriso: first(await runTool('xorriso', ['-version'], opts.tools)),
    grubMkimage: first(await runTool('grub-mkimage', ['--version'], opts.tools)),
  };
}
