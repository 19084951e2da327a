// Runs the outside programs the ISO and USB builders need (xorriso,
// grub-mkimage). A missing program or data file is a MediaToolError naming
// the Debian package to install; a failing one gives the line of its stderr
// that says why (failureLine).
// With a signal, the program runs in a process group of its own, and the
// whole group is killed when the signal aborts (a hung xorriso and anything
// it started).
import { spawn } from 'node:child_process';
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
  /** Aborting it kills the program's process group (SIGKILL) and rejects with the signal's reason. */
  signal?: AbortSignal;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

export function runTool(cmd: string, args: string[], opts: ToolOptions = {}): Promise<string> {
  const env = { ...process.env, ...(opts.path !== undefined ? { PATH: opts.path } : {}), ...opts.env };
  const { signal } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: signal !== undefined });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    const collect = (into: Buffer[]) => (d: Buffer) => {
      bytes += d.length;
      if (bytes <= MAX_OUTPUT) into.push(d);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', kill);
      reject(e.code === 'ENOENT' ? new MediaToolError(`${cmd} is not installed${hint(cmd)}`) : new MediaToolError(`${cmd} failed: ${e.message}`));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', kill);
      if (signal?.aborted) return reject(signal.reason);
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const line = failureLine(Buffer.concat(err).toString('utf8')) ?? (sig ? `killed by ${sig}` : `exit code ${code}`);
      reject(new MediaToolError(`${cmd} failed: ${line}`));
    });
  });
}

/**
 * The stderr line that says why a program failed: the first that names a
 * failure (xorriso's "FAILURE"/"SORRY", grub-mkimage's "error:"), else the
 * last one. Not the first: xorriso starts with its banner.
 */
export function failureLine(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.find((l) => /\b(FATAL|FAILURE|SORRY|error)\b/i.test(l)) ?? lines.at(-1);
}
