// Debian packages for the image: resolved with apt-cache (the candidate, or
// an exact version), downloaded with `apt-get download` into a cache,
// checked against the SHA256 of apt's index (which apt verified against the
// signed Release file), and unpacked with dpkg-deb into a cache of trees.
//
// Cache layout under `cacheDir`:
//   debs/<Filename basename>.deb          downloaded packages
//   trees/<package>_<version>_<sha16>/    unpacked packages (present = complete)
//   resolved/<key>.json                   apt-cache answers, keyed on the state of apt's index
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { PackageRef } from './spec.ts';

export class AptError extends Error {}
export class PackageNotFoundError extends AptError {}
export class ChecksumError extends AptError {}

export const DEFAULT_CACHE_DIR = '/var/cache/zeroboot';

/** One package version as apt's index describes it. */
export interface AptRecord {
  package: string;
  version: string;
  architecture: string;
  /** Path in the archive ("pool/main/b/busybox/busybox-static_1.35.0-4_amd64.deb"). */
  filename: string;
  size: number;
  sha256: string;
  depends: string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}
/** Runs a program; injectable so callers can add tracing or a different root. */
export type Runner = (cmd: string, args: string[], opts?: { cwd?: string }) => Promise<CommandResult>;

export const runCommand: Runner = (cmd, args, opts = {}) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new AptError(`cannot run ${cmd}: ${err.message.split('\n')[0]}`));
        return;
      }
      resolve({ stdout, stderr, code: err ? Number(err.code) : 0 });
    });
  });

/** Parses `apt-cache show` output (deb822 stanzas) into records. */
export function parseAptShow(text: string): AptRecord[] {
  const records: AptRecord[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last = '';
    for (const line of stanza.split('\n')) {
      if (/^[ \t]/.test(line) && last) fields[last] += '\n' + line.trim();
      else {
        const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
        if (m) {
          last = m[1];
          fields[last] = m[2];
        }
      }
    }
    if (!fields.Package) continue;
    records.push({
      package: fields.Package,
      version: fields.Version ?? '',
      architecture: fields.Architecture ?? '',
      filename: fields.Filename ?? '',
      size: Number(fields.Size ?? 0),
      sha256: (fields.SHA256 ?? '').toLowerCase(),
      depends: fields.Depends ?? '',
    });
  }
  return records;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function fsName(s: string): string {
  return s.replace(/[^A-Za-z0-9.+~_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface DebianCacheOptions {
  cacheDir?: string;
  /** Where downloaded .debs are kept (default `<cacheDir>/debs`). */
  debDir?: string;
  /** Where unpacked packages are kept (default `<cacheDir>/trees`). */
  treeDir?: string;
  /** apt's index directory; its state keys the resolution cache. */
  aptListsDir?: string;
  run?: Runner;
  progress?: (message: string) => void;
}

export class DebianCache {
  readonly debDir: string;
  readonly treeDir: string;
  private readonly resolvedDir: string;
  private readonly aptListsDir: string;
  private readonly run: Runner;
  private readonly progress: (message: string) => void;

  constructor(options: DebianCacheOptions = {}) {
    const root = options.cacheDir ?? DEFAULT_CACHE_DIR;
    this.debDir = options.debDir ?? join(root, 'debs');
    this.treeDir = options.treeDir ?? join(root, 'trees');
    this.resolvedDir = join(root, 'resolved');
    this.aptListsDir = options.aptListsDir ?? '/var/lib/apt/lists';
    this.run = options.run ?? runCommand;
    this.progress = options.progress ?? (() => {});
  }

  /** `apt-cache show` for each reference: the exact version when given, else apt's candidate. */
  async show(refs: PackageRef[]): Promise<AptRecord[]> {
    if (refs.length === 0) return [];
    const args = refs.map((r) => (r.version ? `${r.name}=${r.version}` : r.name));
    const res = await this.run('apt-cache', ['show', '--no-all-versions', ...args]);
    if (res.code !== 0) {
      const line = res.stderr.split('\n').find((l) => l.startsWith('E:')) ?? res.stderr.trim().split('\n')[0] ?? '';
      throw new PackageNotFoundError(`apt-cache show ${args.join(' ')} failed: ${line.replace(/^E:\s*/, '')} (is the package name right, and has 'apt-get update' run?)`);
    }
    const records = parseAptShow(res.stdout);
    return refs.map((r) => {
      const rec = records.find((x) => x.package === r.name && (!r.version || x.version === r.version));
      if (!rec) throw new PackageNotFoundError(`apt has no ${r.version ? `${r.name} version ${r.version}` : r.name}`);
      if (!/^[0-9a-f]{64}$/.test(rec.sha256)) throw new AptError(`apt's index gives no SHA256 for ${rec.package} ${rec.version}`);
      if (!rec.filename.endsWith('.deb')) throw new AptError(`apt's index gives no .deb file name for ${rec.package} ${rec.version}`);
      return rec;
    });
  }

  /**
   * Resolves a kernel reference to the package holding the kernel: a
   * metapackage (`linux-image-amd64`) is followed through its Depends to the
   * versioned `linux-image-<release>` package.
   */
  async resolveKernel(ref: PackageRef): Promise<AptRecord> {
    let current = ref;
    for (let hop = 0; hop < 4; hop++) {
      const [rec] = await this.show([current]);
      if (/^linux-image-[0-9]/.test(rec.package)) return rec;
      const dep = /(?:^|,)\s*(linux-image-[0-9][^\s,(|]*)(?:\s*\(\s*=\s*([^)\s]+)\s*\))?/.exec(rec.depends);
      if (!dep) throw new PackageNotFoundError(`${rec.package} ${rec.version} is not a kernel package and depends on none (Depends: ${rec.depends || 'nothing'})`);
      current = dep[2] ? { name: dep[1], version: dep[2] } : { name: dep[1] };
    }
    throw new PackageNotFoundError(`${ref.name}: too many metapackage hops to reach a kernel package`);
  }

  /**
   * Resolves the kernel and packages, reusing an earlier answer while apt's
   * index files are unchanged (apt-cache rereads the whole index on each run
   * when its binary cache is off, as in Debian's container images).
   */
  async resolve(kernel: PackageRef, packages: PackageRef[]): Promise<{ kernel: AptRecord; packages: AptRecord[] }> {
    const key = await this.indexKey({ kernel, packages });
    const file = join(this.resolvedDir, `${key}.json`);
    try {
      const cached = JSON.parse(await readFile(file, 'utf8')) as { kernel: AptRecord; packages: AptRecord[] };
      if (cached.kernel?.sha256 && Array.isArray(cached.packages) && cached.packages.length === packages.length) return cached;
    } catch {}
    this.progress('resolving packages with apt-cache');
    const result = { kernel: await this.resolveKernel(kernel), packages: await this.show(packages) };
    await mkdir(this.resolvedDir, { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(result, null, 2) + '\n');
    await rename(tmp, file);
    return result;
  }

  private async indexKey(request: unknown): Promise<string> {
    const hash = createHash('sha256').update(JSON.stringify(request));
    // Candidates depend on the index files and on pinning.
    for (const dir of [this.aptListsDir, '/etc/apt/preferences.d', '/etc/apt/sources.list.d']) {
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names.sort()) {
        const s = await stat(join(dir, name)).catch(() => undefined);
        if (s?.isFile()) hash.update(`\n${dir}/${name} ${s.size} ${s.mtimeMs}`);
      }
    }
    for (const f of ['/etc/apt/preferences', '/etc/apt/sources.list']) {
      const s = await stat(f).catch(() => undefined);
      if (s) hash.update(`\n${f} ${s.size} ${s.mtimeMs}`);
    }
    return hash.digest('hex').slice(0, 32);
  }

  /** Cached .deb path for a record (not checked). */
  debPath(rec: AptRecord): string {
    return join(this.debDir, basename(rec.filename));
  }

  /** The .deb, downloaded with apt-get when missing or damaged, and checked against the index's SHA256. */
  async fetch(rec: AptRecord): Promise<string> {
    const path = this.debPath(rec);
    const have = await stat(path).catch(() => undefined);
    if (have?.size === rec.size && (await sha256File(path)) === rec.sha256) return path;
    await mkdir(this.debDir, { recursive: true });
    const tmp = join(this.debDir, `.download-${randomBytes(6).toString('hex')}`);
    await mkdir(tmp);
    try {
      this.progress(`downloading ${rec.package} ${rec.version} (${(rec.size / 1e6).toFixed(1)} MB)`);
      // Root's downloads land in a root-owned directory apt's sandbox user cannot write.
      const res = await this.run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', `${rec.package}=${rec.version}`], { cwd: tmp });
      if (res.code !== 0) {
        const line = res.stderr.split('\n').find((l) => l.startsWith('E:')) ?? res.stderr.trim().split('\n').pop() ?? '';
        throw new AptError(`apt-get download ${rec.package}=${rec.version} failed: ${line.replace(/^E:\s*/, '')}`);
      }
      const debs = (await readdir(tmp)).filter((n) => n.endsWith('.deb'));
      if (debs.length !== 1) throw new AptError(`apt-get download ${rec.package}=${rec.version} left ${debs.length} .deb files`);
      const got = await sha256File(join(tmp, debs[0]));
      if (got !== rec.sha256) throw new ChecksumError(`${rec.package} ${rec.version}: downloaded file has SHA256 ${got}, apt's index says ${rec.sha256}`);
      await rename(join(tmp, debs[0]), path);
      return path;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Directory name of a record's unpacked tree. */
  treePath(rec: AptRecord): string {
    return join(this.treeDir, `${fsName(rec.package)}_${fsName(rec.version)}_${rec.sha256.slice(0, 16)}`);
  }

  /** The package's files, unpacked once (after fetch and checksum) and reused while the tree exists. */
  async unpack(rec: AptRecord): Promise<string> {
    const dir = this.treePath(rec);
    if ((await stat(dir).catch(() => undefined))?.isDirectory()) return dir;
    const deb = await this.fetch(rec);
    await mkdir(this.treeDir, { recursive: true });
    const tmp = join(this.treeDir, `.unpack-${randomBytes(6).toString('hex')}`);
    try {
      this.progress(`unpacking ${rec.package} ${rec.version}`);
      const res = await this.run('dpkg-deb', ['-x', deb, tmp]);
      if (res.code !== 0) throw new AptError(`dpkg-deb -x ${deb} failed: ${res.stderr.trim().split('\n')[0]}`);
      try {
        await rename(tmp, dir);
      } catch (e) {
        // Another build unpacked the same package meanwhile: theirs is as good.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      }
      return dir;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
