// Shared by the flist pack tests: the CLI as a child process, and a snapshot
// of a tree (metadata, link groups, content hashes) to compare two trees.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
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

/**
 * A tree with every file type (run as root): 0 bytes, exactly 512 KiB, 3 MB
 * with a hard link, a fifo, a char device, a set-uid file, a symlink, another
 * owner, a 0750 dir and an old mtime. Its files make 8 distinct chunks.
 */
export async function everyTypeTree(src: string): Promise<void> {
  await mkdir(path.join(src, 'sub/deeper'), { recursive: true });
  await writeFile(path.join(src, 'exact-512k'), randomBytes(512 * 1024));
  await writeFile(path.join(src, 'empty'), '');
  await writeFile(path.join(src, 'sub/three-mb'), randomBytes(3_000_000));
  await link(path.join(src, 'sub/three-mb'), path.join(src, 'hardlink'));
  await run('mkfifo', [path.join(src, 'fifo')]);
  await run('mknod', [path.join(src, 'null'), 'c', '1', '3']);
  await writeFile(path.join(src, 'setuid'), '#!/bin/sh\n');
  await chmod(path.join(src, 'setuid'), 0o4755);
  await symlink('sub/three-mb', path.join(src, 'symlink'));
  await chown(path.join(src, 'exact-512k'), 1234, 567);
  await chmod(path.join(src, 'sub/deeper'), 0o750);
  await utimes(path.join(src, 'sub'), 1_600_000_000, 1_600_000_000);
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
