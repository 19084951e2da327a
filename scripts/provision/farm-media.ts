// Boot media for servers that cannot boot from the network: a hybrid ISO
// and a USB image with the node image and the farm's command line (farm id,
// runmode, where to report) built in, by the image/media builders when this
// checkout has them. A stamp of the image build and the command line says
// whether the media on disk are current.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface FarmMedia {
  iso: string;
  usb: string;
  stamp: string;
}

export const MEDIA_STAMP = '.zeroboot-media-stamp';

interface MediaBuilders {
  buildIso(input: { kernel: string; initrd: string; cmdline: string }, out: string): Promise<void>;
  buildUsb(input: { kernel: string; initrd: string; cmdline: string }, out: string): Promise<void>;
}

/** The builders of image/media, or undefined when this checkout has none. */
export async function mediaBuilders(root: string): Promise<MediaBuilders | undefined> {
  const index = path.join(root, 'image/media/index.ts');
  if (!existsSync(index)) return undefined;
  return (await import(index)) as MediaBuilders;
}

export function farmMedia(dir: string, farmId: number): FarmMedia {
  return { iso: path.join(dir, `zos-farm${farmId}.iso`), usb: path.join(dir, `zos-farm${farmId}-usb.img`), stamp: path.join(dir, MEDIA_STAMP) };
}

/** What the media on disk must have been built from: the image build (its stamp) and the command line. */
export async function mediaStamp(imageDir: string, cmdline: string): Promise<string> {
  const image = await readFile(path.join(imageDir, '.zeroboot-build-stamp'), 'utf8').catch(() => 'unbuilt');
  return createHash('sha256').update(image).update('\n').update(cmdline).digest('hex');
}

export async function mediaCurrent(m: FarmMedia, want: string): Promise<boolean> {
  const have = await readFile(m.stamp, 'utf8').catch(() => '');
  return have === want && existsSync(m.iso) && existsSync(m.usb);
}
