// All three media of an image, under the names `zeroboot image build`
// writes them (DESIGN.md). Built one after the other: each is mostly
// copying the same kernel and initramfs.
import { join } from 'node:path';
import { buildIso } from './iso.ts';
import type { MediaInput } from './input.ts';
import type { MediaOptions } from './options.ts';
import { buildUki } from './uki.ts';
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
