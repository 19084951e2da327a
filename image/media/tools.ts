// Runs the outside programs the ISO and USB builders need (xorriso,
// grub-mkimage). A missing program or data file is a MediaToolError naming
// the Debian package to install; a failing one gives its first stderr line.
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { MediaToolError } from './errors.ts';

/** The Debian package that provides each program or file the builders use. */
export const TOOL_PACKAGES: Record<string, string> = {
  xorriso: 'xorriso',
  'grub-mkimage': 'grub-common',
  '/usr/lib/ISOLINUX/isolinux.bin': 'isolinux',
  '/usr/lib/ISOLINUX/isohdpfx.bin': 'isolinux',
  '/usr/lib/syslinux/modules/bios/ldlinux.c32': 'syslinux-common',
  '/usr/lib/grub/i386-pc': 'grub-pc-bin',
};

function hint(what: string): string {
  const pkg = TOOL_PACKAGES[what];
  return pkg ? ` (apt-get install ${pkg})` : '';
}

export async function requireFile(path: string): Promise<string> {
  try {
    await access(path);
  } catch {
    throw new MediaToolError(`${path} is missing${hint(path)}`);
  }
  return path;
}

export interface ToolOptions {
  env?: Record<string, string>;
  /** Look programs up here instead of PATH (tests use it to hide a tool). */
  path?: string;
}

export function runTool(cmd: string, args: string[], opts: ToolOptions = {}): Promise<string> {
  const env = { ...process.env, ...(opts.path !== undefined ? { PATH: opts.path } : {}), ...opts.env };
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new MediaToolError(`${cmd} is not installed${hint(cmd)}`));
      const line = stderr.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? err.message.split('\n')[0];
      reject(new MediaToolError(`${cmd} failed: ${line}`));
    });
  });
}
