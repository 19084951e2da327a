// Shared by the flist pack tests: the CLI as a child process, and a snapshot
// of a tree (metadata, link groups, content hashes) to compare two trees.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function zeroboot(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/** Every entry under root (root itself left out): type, mode, owner, size, mtime, rdev, symlink target, sha256, hard-link group. */
export async function snapshot(root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const firstName = new Map<number, string>();
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const p = path.join(d, name);
      const st = await lstat(p);
      const rel = path.relative(root, p);
      let linkedTo: string | undefined;
      if (st.isFile() && st.nlink > 1) {
        linkedTo = firstName.get(st.ino) ?? rel;
        firstName.set(st.ino, linkedTo);
      }
      out[rel] = {
        mode: st.mode.toString(8),
        uid: st.uid,
        gid: st.gid,
        size: st.isDirectory() ? 0 : st.size,
        mtime: Math.floor(st.mtimeMs / 1000),
        linkedTo,
        rdev: st.rdev,
        target: st.isSymbolicLink() ? await readlink(p) : undefined,
        sha: st.isFile() ? createHash('sha256').update(await readFile(p)).digest('hex') : undefined,
      };
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out;
}

/** `flist ls --json` without the file's own name: the content listing. */
export async function listing(fl: string): Promise<unknown> {
  const r = await zeroboot(['flist', 'ls', '--json', fl]);
  if (r.code !== 0) throw new Error(`ls ${fl}: ${r.stderr}`);
  const l = JSON.parse(r.stdout) as { file?: string };
  delete l.file;
  return l;
}
