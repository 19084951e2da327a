// Builds an image directory from an image description: vmlinuz (the
// kernel package's file, byte for byte), initramfs.img (cpio newc,
// compressed), boot.ipxe and manifest.json with the sha256 of each; with
// secureBoot also shimx64.efi and grubx64.efi (secure-boot.ts); with node
// also Node and zeroboot's sources in the initramfs (node-runtime.ts). The
// output depends only on the description, the resolved package files and
// the compressor's library version, so two builds give the same bytes.
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { constants as zc, gzip, zstdCompress } from 'node:zlib';
import { buildCmdline } from '../lib/cmdline.ts';
import { imageBootScript, INITRD_FILE, KERNEL_FILE } from './boot-script.ts';
import { writeCpio } from './cpio.ts';
import type { CpioEntry } from './cpio.ts';
import { DebianCache } from './debian.ts';
import type { AptRecord, DebianCacheOptions } from './debian.ts';
import { initScript, LOAD_ORDER_FILE, UDHCPC_SCRIPT_PATH, udhcpcScript } from './init.ts';
import { checkProgramNeeds, nodeRuntime } from './node-runtime.ts';
import type { NodeRuntimeInfo, NodeRuntimeOptions } from './node-runtime.ts';
import { KernelModuleTree, loadOrderFile, modulesDep, readModuleFile, resolveModules } from './modules.ts';
import type { ModuleResolution } from './modules.ts';
import { ImageBuildError } from './errors.ts';
import { requireSigned, secureBootLoaders, unsignedKernelHint } from './secure-boot.ts';
import { ImageSpecError } from './spec.ts';
import type { Compression, ImageSpec } from './spec.ts';


export const BOOT_SCRIPT_FILE = 'boot.ipxe';
export const MANIFEST_FILE = 'manifest.json';

export interface ArtifactInfo {
  size: number;
  sha256: string;
}

export interface PackageInfo {
  package: string;
  version: string;
  /** SHA256 of the .deb, as apt's index gives it (and as checked). */
  sha256: string;
}

export interface ImageManifest {
  name: string;
  kernel: PackageInfo & { release: string };
  packages: PackageInfo[];
  /** With secureBoot: the shim-signed and grub-efi-amd64-signed packages the loaders come from (absent otherwise). */
  secureBoot?: PackageInfo[];
  /** Modules in load order (dependencies included). */
  modules: string[];
  /** Asked-for modules that are built into the kernel. */
  builtinModules: string[];
  /** The kernel command line boot.ipxe passes (before BOOTIF and initrd=). */
  cmdline: string;
  compression: Compression;
  /** The mtime stamped on every initramfs entry. */
  mtime: number;
  /** With node: the carried Node binary (version, size, sha256) and zeroboot sources (absent otherwise). */
  node?: NodeRuntimeInfo;
  /** Library versions the initramfs bytes depend on. */
  tools: { zlib: string; zstd?: string };
  artifacts: Record<string, ArtifactInfo>;
}

export interface BuildOptions extends DebianCacheOptions {
  outDir: string;
  /** Seconds since the epoch for every initramfs entry (SOURCE_DATE_EPOCH); default 0. */
  mtime?: number;
  /** With spec.node: which Node binary and sources to carry (default: the running ones). */
  node?: NodeRuntimeOptions;
}

/** Paths inside a package that an initramfs has no use for. */
const SKIP_PREFIXES = ['usr/share/doc/', 'usr/share/man/', 'usr/share/info/', 'usr/share/lintian/', 'usr/share/bug/', 'usr/share/doc-base/', 'usr/share/locale/'];
const RELEASE = /^[A-Za-z0-9._+-]+$/;

const SKELETON: CpioEntry[] = [
  ...['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'etc/zeroboot', 'lib', 'lib/modules', 'proc', 'sys', 'dev', 'run', 'mnt', 'var'].map((path): CpioEntry => ({ type: 'dir', path })),
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  { type: 'dir', path: 'root', mode: 0o700 },
  // The kernel opens /dev/console for init before anything is mounted.
  { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
  { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
];

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The kernel release (the lib/modules directory) and the vmlinuz path in an unpacked linux-image package. */
export async function kernelLayout(tree: string, pkg: string): Promise<{ release: string; vmlinuz: string }> {
  const releases = await readdir(join(tree, 'lib/modules')).catch(() => [] as string[]);
  if (releases.length !== 1) throw new ImageBuildError(`${pkg}: expected one lib/modules/<release> directory, found ${releases.length}`);
  const release = releases[0];
  if (!RELEASE.test(release)) throw new ImageBuildError(`${pkg}: kernel release ${JSON.stringify(release)} has unexpected characters`);
  const vmlinuz = join(tree, 'boot', `vmlinuz-${release}`);
  if (!(await lstat(vmlinuz).catch(() => undefined))?.isFile()) throw new ImageBuildError(`${pkg}: no boot/vmlinuz-${release} in the package`);
  return { release, vmlinuz };
}

/** Entries for every file, directory and symlink of an unpacked package, documentation left out. */
export async function packageEntries(tree: string): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [];
  const names = (await readdir(tree, { recursive: true })).sort();
  for (const rel of names) {
    if (SKIP_PREFIXES.some((p) => rel.startsWith(p) || `${rel}/` === p)) continue;
    const abs = join(tree, rel);
    const st = await lstat(abs);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) entries.push({ type: 'dir', path: rel, mode });
    else if (st.isSymbolicLink()) entries.push({ type: 'symlink', path: rel, target: await readlink(abs) });
    else if (st.isFile()) entries.push({ type: 'file', path: rel, mode, data: await readFile(abs) });
    else throw new ImageBuildError(`${abs}: packages may only hold files, directories and symlinks`);
  }
  return entries;
}

/** A virtio device driver without a virtio transport finds no devices: say so instead of booting without a NIC. */
function checkVirtioTransport(resolution: ModuleResolution, modules: KernelModuleTree): void {
  const loaded = new Set(resolution.modules.map((m) => m.name));
  if (!loaded.has('virtio')) return;
  const transports = ['virtio_pci', 'virtio_mmio'];
  if (transports.some((t) => loaded.has(t) || modules.find(t) === 'builtin')) return;
  const users = resolution.modules.filter((m) => m.depends.includes('virtio')).map((m) => m.name);
  throw new ImageSpecError('modules', `${users.join(', ')} ${users.length === 1 ? 'needs' : 'need'} a virtio transport: add virtio_pci (PCI, as QEMU uses) or virtio_mmio`);
}

async function compress(data: Buffer, how: Compression): Promise<Buffer> {
  // node:zlib writes the gzip header with mtime 0 and a fixed OS byte. Levels:
  // on a 5.4 MB initramfs gzip -9 saves 0.3% over -6 for 9x the time; zstd 9
  // is 10% smaller than gzip -6 in about the same time (zstd 19: 10% more, 20x slower).
  if (how === 'gzip') return promisify(gzip)(data, { level: 6 });
  if (how === 'zstd') return promisify(zstdCompress)(data, { params: { [zc.ZSTD_c_compressionLevel]: 9, [zc.ZSTD_c_checksumFlag]: 1 } });
  return data;
}

async function writeAtomic(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(tmp, data);
  await rename(tmp, join(dir, name));
}

function pkgInfo(rec: AptRecord): PackageInfo {
  return { package: rec.package, version: rec.version, sha256: rec.sha256 };
}

/** Builds the image into `options.outDir` and returns its manifest (also written as manifest.json). */
export async function buildImage(spec: ImageSpec, options: BuildOptions): Promise<ImageManifest> {
  const progress = options.progress ?? (() => {});
  const mtime = options.mtime ?? 0;
  const cache = new DebianCache(options);

  // The Secure Boot packages ride along in the same (cached) resolution, after the initramfs packages.
  const sb = spec.secureBoot;
  const resolved = await cache.resolve(spec.kernel, sb ? [...spec.packages, sb.shim, sb.grub] : spec.packages);
  const packages = resolved.packages.slice(0, spec.packages.length);
  const sbPackages = resolved.packages.slice(spec.packages.length);
  const [kernelTree, ...trees] = await Promise.all([resolved.kernel, ...resolved.packages].map((r) => cache.unpack(r)));
  const packageTrees = trees.slice(0, packages.length);
  const { release, vmlinuz } = await kernelLayout(kernelTree, resolved.kernel.package);
  const kernel = await readFile(vmlinuz);
  let loaders: [string, Buffer][] = [];
  if (sb) {
    requireSigned(kernel, `${resolved.kernel.package}: /boot/vmlinuz-${release}`, unsignedKernelHint(release));
    const [shimTree, grubTree] = trees.slice(packages.length);
    loaders = await secureBootLoaders({ tree: shimTree, package: sbPackages[0].package }, { tree: grubTree, package: sbPackages[1].package });
  }

  progress(`resolving ${spec.modules.length} kernel modules for ${release}`);
  const tree = await KernelModuleTree.open(kernelTree, release);
  const resolution = await resolveModules(spec.modules, tree, release);
  checkVirtioTransport(resolution, tree);

  const entries: CpioEntry[] = [...SKELETON];
  const taken = new Map<string, { owner: string; entry: CpioEntry }>(SKELETON.map((entry) => [entry.path, { owner: 'the image skeleton', entry }]));
  const add = (entry: CpioEntry, owner: string) => {
    const prev = taken.get(entry.path);
    if (prev) {
      if (entry.type === 'dir' && prev.entry.type === 'dir') return;
      throw new ImageBuildError(`${entry.path} is provided by both ${prev.owner} and ${owner}`);
    }
    taken.set(entry.path, { owner, entry });
    entries.push(entry);
  };
  for (let i = 0; i < packageTrees.length; i++) {
    for (const e of await packageEntries(packageTrees[i])) add(e, packages[i].package);
  }
  const busybox = entries.find((e) => e.path === 'bin/busybox');
  if (!busybox || busybox.type !== 'file') throw new ImageSpecError('packages', 'no package provides /bin/busybox, which /init runs: add busybox-static');

  let node: NodeRuntimeInfo | undefined;
  if (spec.node) {
    progress(`adding Node and the sources of zeroboot ${spec.node.commands.join(', ')}`);
    const runtime = await nodeRuntime(spec.node.commands, options.node);
    for (const e of runtime.entries) add(e, 'the node runtime');
    checkProgramNeeds(`/${runtime.entries[0].path} (Node ${runtime.info.version})`, runtime.program, new Map([...taken].map(([p, v]) => [p, v.entry])));
    node = runtime.info;
  }

  const modDir = `lib/modules/${release}`;
  for (const m of resolution.modules) {
    add({ type: 'file', path: `${modDir}/${m.path}`, data: await readModuleFile(join(tree.dir, m.source)) }, 'the kernel modules');
  }
  add({ type: 'file', path: `${modDir}/modules.dep`, data: Buffer.from(modulesDep(resolution)) }, 'the kernel modules');
  add({ type: 'file', path: `${modDir}/${LOAD_ORDER_FILE}`, data: Buffer.from(loadOrderFile(resolution)) }, 'the kernel modules');
  const builtinList = await readFile(join(tree.dir, 'modules.builtin')).catch(() => undefined);
  if (builtinList) add({ type: 'file', path: `${modDir}/modules.builtin`, data: builtinList }, 'the kernel modules');
  add({ type: 'file', path: 'init', mode: 0o755, data: Buffer.from(initScript({ imageName: spec.name })) }, 'the image init');
  add({ type: 'file', path: UDHCPC_SCRIPT_PATH, mode: 0o755, data: Buffer.from(udhcpcScript()) }, 'the image init');

  progress(`writing the initramfs (${entries.length} entries, ${spec.compression})`);
  const cpio = writeCpio(entries, { mtime });
  const initramfs = await compress(cpio, spec.compression);
  const script = Buffer.from(imageBootScript(spec.name, release, spec.cmdline));

  await mkdir(options.outDir, { recursive: true });
  const artifacts: Record<string, ArtifactInfo> = {};
  const files: [string, Buffer][] = [[KERNEL_FILE, kernel], [INITRD_FILE, initramfs], [BOOT_SCRIPT_FILE, script], ...loaders];
  for (const [name, data] of files) {
    await writeAtomic(options.outDir, name, data);
    artifacts[name] = { size: data.length, sha256: sha256(data) };
  }
  const manifest: ImageManifest = {
    name: spec.name,
    kernel: { ...pkgInfo(resolved.kernel), release },
    packages: packages.map(pkgInfo),
    ...(sb ? { secureBoot: sbPackages.map(pkgInfo) } : {}),
    modules: resolution.modules.map((m) => m.name),
    builtinModules: resolution.builtin,
    cmdline: buildCmdline(spec.cmdline),
    compression: spec.compression,
    mtime,
    ...(node ? { node } : {}),
    tools: spec.compression === 'zstd' ? { zlib: process.versions.zlib, zstd: process.versions.zstd ?? 'unknown' } : { zlib: process.versions.zlib },
    artifacts,
  };
  await writeAtomic(options.outDir, MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n');
  progress(`wrote ${options.outDir}`);
  return manifest;
}
