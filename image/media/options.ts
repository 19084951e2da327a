// Options every media builder accepts.
import type { ToolOptions } from './tools.ts';

export interface MediaOptions {
  /** Seconds since the epoch stamped on every file (SOURCE_DATE_EPOCH); default 0. */
  mtime?: number;
  /** systemd's EFI stub (default: Debian's). */
  stub?: string;
  /** How outside programs are run (PATH override for tests). */
  tools?: ToolOptions;
}

/** Where the kernel and initramfs sit on the ISO and the USB file system. */
export const MEDIA_KERNEL = 'zos/vmlinuz';
export const MEDIA_INITRD = 'zos/initrd.img';
/** The removable-media path UEFI firmware starts. */
export const EFI_BOOT_PATH = 'EFI/BOOT/BOOTX64.EFI';

/** The mtime option, or SOURCE_DATE_EPOCH from the environment, or 0. */
export function mediaTime(opts: MediaOptions): number {
  if (opts.mtime !== undefined) return opts.mtime;
  const env = process.env.SOURCE_DATE_EPOCH;
  return env && /^[0-9]+$/.test(env) ? Number(env) : 0;
}
