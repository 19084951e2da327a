// What every builder takes: a kernel, an initramfs and the command line to
// embed. The line lands inside boot loader configurations (isolinux, GRUB)
// as well as the UKI, so it is held to printable ASCII without the quoting
// and expansion characters either loader would interpret; a kernel that is
// not an x86 bzImage is refused before anything is written.
import { readFile } from 'node:fs/promises';
import { MediaInputError } from './errors.ts';

export interface MediaInput {
  /** Path of the kernel (an x86 bzImage, EFI-stub capable for UEFI media). */
  kernel: string;
  /** Path of the initramfs. */
  initrd: string;
  /** The kernel command line embedded in the medium. */
  cmdline: string;
}

/** The x86 kernel's COMMAND_LINE_SIZE, NUL included. */
export const MAX_CMDLINE = 2047;
const UNSAFE = /[^\x20-\x7e]|["'`$\\;{}]/;

export function checkCmdline(cmdline: string): string {
  if (typeof cmdline !== 'string') throw new MediaInputError('cmdline must be a string');
  const line = cmdline.trim();
  if (line.length > MAX_CMDLINE) throw new MediaInputError(`the kernel command line is ${line.length} bytes; the kernel keeps at most ${MAX_CMDLINE}`);
  const bad = UNSAFE.exec(line);
  if (bad) throw new MediaInputError(`the kernel command line has ${JSON.stringify(bad[0])} at ${bad.index}: only printable ASCII without quotes, $, \\, ;, { or } survives every boot loader's configuration`);
  return line;
}

/** True when `data` is an x86 Linux boot image (the "HdrS" setup header). */
export function isBzImage(data: Uint8Array): boolean {
  return data.length > 0x206 && Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1', 0x202, 0x206) === 'HdrS';
}

async function readInput(path: string, what: string): Promise<Buffer> {
  if (typeof path !== 'string' || path === '') throw new MediaInputError(`${what}: no path given`);
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MediaInputError(`${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`);
  }
}

export interface LoadedInput {
  kernel: Buffer;
  initrd: Buffer;
  cmdline: string;
}

/** Reads and checks the inputs. */
export async function loadInput(input: MediaInput): Promise<LoadedInput> {
  const cmdline = checkCmdline(input.cmdline);
  const [kernel, initrd] = await Promise.all([readInput(input.kernel, 'kernel'), readInput(input.initrd, 'initrd')]);
  if (!isBzImage(kernel)) throw new MediaInputError(`kernel ${input.kernel}: not an x86 Linux kernel (no "HdrS" boot header at 0x202)`);
  if (initrd.length === 0) throw new MediaInputError(`initrd ${input.initrd}: empty file`);
  return { kernel, initrd, cmdline };
}
