// Kernel modules for the initramfs: finds modules by name in an unpacked
// kernel package, follows `depends=` from each module's .modinfo, and puts
// them in load order (each module after its dependencies, otherwise in the
// order asked for, dependencies visited by name: deterministic). Writes
// modules.dep in depmod's format so busybox modprobe works in the image too.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { parseModinfo, ElfError } from './elf-modinfo.ts';
import type { ModInfo } from './elf-modinfo.ts';

export class ModuleError extends Error {}
export class UnknownModuleError extends ModuleError {
  readonly module: string;
  constructor(module: string, message: string) {
    super(message);
    this.module = module;
  }
}

/** Module names compare with "-" and "_" alike, as the kernel and kmod do. */
export function moduleName(name: string): string {
  return name.replace(/-/g, '_');
}

const MODULE_FILE = /\.ko(\.xz|\.zst|\.gz)?$/;

/** Name of a module file ("kernel/drivers/char/hw_random/virtio-rng.ko.xz" -> "virtio_rng"). */
export function moduleFileName(path: string): string {
  return moduleName(path.slice(path.lastIndexOf('/') + 1).replace(MODULE_FILE, ''));
}

/** What the resolver needs to know about a kernel's modules. */
export interface ModuleSource {
  /** The module's path relative to lib/modules/<release>, "builtin" if compiled in, undefined if unknown. */
  find(name: string): string | 'builtin' | undefined;
  info(path: string): Promise<ModInfo>;
}

export interface ResolvedModule {
  name: string;
  /** Path in the image, relative to lib/modules/<release> ("kernel/drivers/net/virtio_net.ko"); always uncompressed. */
  path: string;
  /** Path in the kernel package (may end in .ko.xz/.ko.zst/.ko.gz). */
  source: string;
  /** Direct dependencies (module names). */
  depends: string[];
  vermagic: string;
}

export interface ModuleResolution {
  /** Modules to load, in load order. */
  modules: ResolvedModule[];
  /** Asked-for modules that are built into the kernel (nothing to load). */
  builtin: string[];
}

/** Resolves `wanted` plus their dependencies into load order; throws UnknownModuleError naming a module the kernel does not have. */
export async function resolveModules(wanted: readonly string[], source: ModuleSource, release?: string): Promise<ModuleResolution> {
  const order: ResolvedModule[] = [];
  const builtin: string[] = [];
  const done = new Set<string>();
  const visiting: string[] = [];

  const visit = async (raw: string, requiredBy: string | undefined): Promise<void> => {
    const name = moduleName(raw);
    if (done.has(name)) return;
    if (visiting.includes(name)) throw new ModuleError(`module dependency cycle: ${[...visiting, name].join(' -> ')}`);
    const path = source.find(name);
    if (path === undefined) {
      const why = requiredBy ? `, which ${requiredBy} depends on,` : '';
      throw new UnknownModuleError(name, `kernel module ${name}${why} is neither a module file nor built into kernel ${release ?? ''}`.replace(/ +$/, ''));
    }
    if (path === 'builtin') {
      done.add(name);
      if (!requiredBy) builtin.push(name);
      return;
    }
    visiting.push(name);
    let info: ModInfo;
    try {
      info = await source.info(path);
    } catch (e) {
      if (e instanceof ElfError) throw new ModuleError(`${path}: ${e.message}`);
      throw e;
    }
    if (release !== undefined && info.vermagic.split(' ')[0] !== release) {
      throw new ModuleError(`${path} was built for kernel ${info.vermagic.split(' ')[0] || '(no vermagic)'}, not ${release}`);
    }
    const depends = [...new Set(info.depends.map(moduleName))].sort();
    for (const dep of depends) await visit(dep, name);
    visiting.pop();
    done.add(name);
    order.push({ name, path: path.replace(/\.(xz|zst|gz)$/, ''), source: path, depends, vermagic: info.vermagic });
  };

  for (const name of wanted) await visit(name, undefined);
  return { modules: order, builtin };
}

/**
 * modules.dep as depmod writes it: one line per module, its transitive
 * dependencies nearest first (modprobe loads them right to left).
 */
export function modulesDep(resolution: ModuleResolution): string {
  const byName = new Map(resolution.modules.map((m) => [m.name, m]));
  const position = new Map(resolution.modules.map((m, i) => [m.name, i]));
  const closure = (m: ResolvedModule, into: Set<string>) => {
    for (const d of m.depends) {
      const dep = byName.get(d);
      if (dep && !into.has(d)) {
        into.add(d);
        closure(dep, into);
      }
    }
  };
  const lines = [...resolution.modules]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((m) => {
      const deps = new Set<string>();
      closure(m, deps);
      const ordered = [...deps].sort((a, b) => position.get(b)! - position.get(a)!);
      return `${m.path}:${ordered.map((d) => ' ' + byName.get(d)!.path).join('')}`;
    });
  return lines.join('\n') + (lines.length ? '\n' : '');
}

/** The load order file the image's /init reads: one module path per line. */
export function loadOrderFile(resolution: ModuleResolution): string {
  return resolution.modules.map((m) => m.path + '\n').join('');
}

/** Reads a module file, decompressing .ko.gz/.ko.zst (node:zlib) and .ko.xz (the xz program). */
export async function readModuleFile(path: string): Promise<Buffer> {
  const data = await readFile(path);
  if (path.endsWith('.ko.gz')) return gunzipSync(data);
  if (path.endsWith('.ko.zst')) return zstdDecompressSync(data);
  if (path.endsWith('.ko.xz')) {
    return new Promise((resolve, reject) => {
      const child = execFile('xz', ['-dc'], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 }, (err, stdout) => {
        if (err) reject(new ModuleError(`cannot decompress ${path} with xz: ${err.message.split('\n')[0]}`));
        else resolve(stdout);
      });
      child.stdin!.end(data);
    });
  }
  return data;
}

/** The modules of one kernel, from lib/modules/<release> of an unpacked kernel package. */
export class KernelModuleTree implements ModuleSource {
  readonly dir: string;
  readonly release: string;
  private readonly files: Map<string, string>;
  private readonly builtins: Set<string>;

  private constructor(dir: string, release: string, files: Map<string, string>, builtins: Set<string>) {
    this.dir = dir;
    this.release = release;
    this.files = files;
    this.builtins = builtins;
  }

  /** Indexes `<root>/lib/modules/<release>` (file names and modules.builtin; module contents are read on demand). */
  static async open(root: string, release: string): Promise<KernelModuleTree> {
    const dir = join(root, 'lib/modules', release);
    const files = new Map<string, string>();
    let entries: string[];
    try {
      entries = await readdir(join(dir, 'kernel'), { recursive: true });
    } catch (e) {
      throw new ModuleError(`${dir}/kernel: cannot list the modules: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    for (const rel of entries.sort()) {
      if (!MODULE_FILE.test(rel)) continue;
      const name = moduleFileName(rel);
      const path = `kernel/${rel}`;
      if (files.has(name)) throw new ModuleError(`two files for module ${name}: ${files.get(name)} and ${path}`);
      files.set(name, path);
    }
    const builtinText = await readFile(join(dir, 'modules.builtin'), 'utf8').catch(() => '');
    const builtins = new Set(builtinText.split('\n').filter(Boolean).map(moduleFileName));
    return new KernelModuleTree(dir, release, files, builtins);
  }

  find(name: string): string | 'builtin' | undefined {
    const n = moduleName(name);
    return this.files.get(n) ?? (this.builtins.has(n) ? 'builtin' : undefined);
  }

  async info(path: string): Promise<ModInfo> {
    return parseModinfo(await readModuleFile(join(this.dir, path)));
  }

  /** Number of loadable module files. */
  get size(): number {
    return this.files.size;
  }
}
