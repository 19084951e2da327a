// Builds an image directory from an image description: vmlinuz (the
// kernel package's file, byte for byte), initramfs.img (cpio newc,
// compressed), boot.ipxe and manifest.json with the sha256 of each; with
// secureBoot also shimx64.efi and grubx64.efi (secure-boot.ts). The
// initramfs is the merge of flist layers (layers.ts): the packages, then
// Node and zeroboot's sources (node-runtime.ts, npm.ts), then the
// description's layers; under them the skeleton, over them the modules and
// /init. The boot media (media/: the UKI zos.efi, the hybrid ISO zos.iso,
// the USB image zos-usb.img) embed the kernel, the initramfs and the
// description's command line. Layers marked `at: boot` are written beside the image as <name>.fl
// with their chunks under chunks/, and their names and .fl sha256 go into
// the initramfs (etc/zeroboot/layers) for /init to fetch and check them
// (layer-fetch.ts). The output depends only on the
// description, the resolved package files and the compressor's library
// version, so two builds give the same bytes.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { constants as zc, gzip, zstdCompress } from 'node:zlib';
import { buildCmdline } from '../lib/cmdline.ts';
import { imageBootScript, INITRD_FILE, KERNEL_FILE } from './boot-script.ts';
import { writeCpio } from './cpio.ts';
import type { CpioEntry } from './cpio.ts';
import { ChunkPool } from '../flist/chunk-pool.ts';
import { DebianCache, DEFAULT_CACHE_DIR, runCommand } from './debian.ts';
import type { AptRecord, DebianCacheOptions } from './debian.ts';
import { initScript, LOAD_ORDER_FILE, UDHCPC_SCRIPT_PATH, udhcpcScript } from './init.ts';
import { LAYER_LIST_PATH, layerList } from './layer-fetch.ts';
import { checkPackageClashes, DEFAULT_STRIP, exportLayer, LayerBuilder, mergeLayers, treeEntries } from './layers.ts';
import type { Layer, LayerInfo } from './layers.ts';
import { extractFromTarball, npmTarball } from './npm.ts';
import { checkProgramNeeds, NODE_PATH, nodeRuntime } from './node-runtime.ts';
import type { NodeRuntimeInfo, NodeRuntimeOptions } from './node-runtime.ts';
import { KernelModuleTree, loadOrderFile, modulesDep, readModuleFile, resolveModules } from './modules.ts';
import type { ModuleResolution } from './modules.ts';
import { ImageBuildError } from './errors.ts';
import { buildMedia } from './media/all.ts';
import { requireSigned, secureBootLoaders, unsignedKernelHint } from './secure-boot.ts';
import { ImageSpecError } from './spec.ts';
import type { Compression, ImageSpec, LayerPlace, NodeSpec } from './spec.ts';


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
  /** Every layer, bottom first: the packages, Node's, then the description's; each with the sha256 of its .fl. */
  layers: LayerInfo[];
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
  /** With spec.node: which Node binary and sources to carry (default: the running ones, or node.runtime from npm). */
  node?: NodeRuntimeOptions;
  /** Packed layers and their chunk store (default `<cacheDir>/layers`). */
  layerDir?: string;
  /** Also write the boot media zos.efi, zos.iso and zos-usb.img (default true). */
  media?: boolean;
}

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

/** Writes the runtime's entries (files only) under a staging folder, for packing as a layer. */
async function stage(dir: string, entries: readonly CpioEntry[]): Promise<string> {
  for (const e of entries) {
    if (e.type !== 'file') throw new ImageBuildError(`${e.path}: the node runtime holds only files`);
    await mkdir(join(dir, dirname(e.path)), { recursive: true });
    await writeFile(join(dir, e.path), e.data, { mode: e.mode ?? 0o644 });
    await chmod(join(dir, e.path), e.mode ?? 0o644);
  }
  return dir;
}

/** Node's layers: the binary (cached by its sha256) and zeroboot's sources with the wrapper. */
async function nodeLayers(spec: NodeSpec, layers: LayerBuilder, options: BuildOptions, layerDir: string): Promise<{ layers: Layer[]; info: NodeRuntimeInfo; program: Buffer }> {
  let nodeBinary = options.node?.nodeBinary;
  let source: string | undefined;
  if (spec.runtime) {
    const { tgz, integrity } = await npmTarball(spec.runtime, join(layerDir, 'npm'), options.run, options.progress);
    const extracted = layers.scratch('node');
    await extractFromTarball(tgz, 'bin/node', extracted, options.run);
    // The official binary carries its symbol table and some DWARF (18 of its 127 MB); a node
    // needs neither (.dynsym, which addons link against, stays). binutils' strip is deterministic.
    nodeBinary = layers.scratch('node-stripped');
    const res = await (options.run ?? runCommand)('strip', ['--strip-all', '-o', nodeBinary, extracted]);
    if (res.code !== 0) throw new ImageBuildError(`strip --strip-all ${extracted} failed: ${res.stderr.trim().split('\n')[0]} (install binutils)`);
    source = `${spec.runtime.name}@${spec.runtime.version} ${integrity}, symbols stripped`;
  }
  const runtime = await nodeRuntime(spec.commands, { ...options.node, nodeBinary });
  const [program, ...rest] = runtime.entries;
  const binary = await layers.cached(`node-${runtime.info.sha256}`, { name: 'node', kind: spec.runtime ? 'npm' : 'node-binary', source: source ?? `the builder's Node ${runtime.info.version}`, at: 'initramfs' }, false, () => stage(layers.scratch('node-stage'), [program]));
  const code = await layers.fromDir(await stage(layers.scratch('zeroboot-stage'), rest), { name: 'zeroboot', kind: 'zeroboot', source: `zeroboot ${spec.commands.join(' ')}`, at: 'initramfs' });
  return { layers: [binary, code], info: runtime.info, program: runtime.program };
}

/** Builds the image into `options.outDir` and returns its manifest (also written as manifest.json). */
export async function buildImage(spec: ImageSpec, options: BuildOptions): Promise<ImageManifest> {
  const progress = options.progress ?? (() => {});
  const mtime = options.mtime ?? 0;
  const cache = new DebianCache(options);
  const layerDir = options.layerDir ?? join(options.cacheDir ?? DEFAULT_CACHE_DIR, 'layers');

  // The deb layers and the Secure Boot packages ride along in the same (cached) resolution, after the initramfs packages.
  const sb = spec.secureBoot;
  const debLayers = spec.layers.flatMap((l) => (l.source.kind === 'deb' ? [l.source.package] : []));
  const resolved = await cache.resolve(spec.kernel, [...spec.packages, ...debLayers, ...(sb ? [sb.shim, sb.grub] : [])]);
  const packages = resolved.packages.slice(0, spec.packages.length);
  const debRecords = resolved.packages.slice(spec.packages.length, spec.packages.length + debLayers.length);
  const sbPackages = resolved.packages.slice(spec.packages.length + debLayers.length);
  const [kernelTree, ...sbTrees] = await Promise.all([resolved.kernel, ...sbPackages].map((r) => cache.unpack(r)));
  const { release, vmlinuz } = await kernelLayout(kernelTree, resolved.kernel.package);
  const kernel = await readFile(vmlinuz);
  let loaders: [string, Buffer][] = [];
  if (sb) {
    requireSigned(kernel, `${resolved.kernel.package}: /boot/vmlinuz-${release}`, unsignedKernelHint(release));
    loaders = await secureBootLoaders({ tree: sbTrees[0], package: sbPackages[0].package }, { tree: sbTrees[1], package: sbPackages[1].package });
  }

  progress(`resolving ${spec.modules.length} kernel modules for ${release}`);
  const tree = await KernelModuleTree.open(kernelTree, release);
  const resolution = await resolveModules(spec.modules, tree, release);
  checkVirtioTransport(resolution, tree);

  const pool = await ChunkPool.create();
  const layers = await LayerBuilder.open({ layerDir, pool, mtime, progress });
  const readStores: string[] = [];
  try {
    const debLayer = (rec: AptRecord, name: string, at: LayerPlace) =>
      layers.cached(`deb-${rec.sha256}`, { name, kind: 'deb', source: `${rec.package}=${rec.version}`, at }, true, () => cache.unpack(rec));
    const packageLayers: Layer[] = [];
    for (const rec of packages) packageLayers.push(await debLayer(rec, rec.package, 'initramfs'));
    checkPackageClashes(packageLayers);

    let node: { layers: Layer[]; info: NodeRuntimeInfo; program: Buffer } | undefined;
    if (spec.node) {
      progress(`adding Node and the sources of zeroboot ${spec.node.commands.join(', ')}`);
      node = await nodeLayers(spec.node, layers, options, layerDir);
    }

    const taken = new Set([...packageLayers, ...(node?.layers ?? [])].map((l) => l.info.name));
    const userLayers: Layer[] = [];
    let debIndex = 0;
    for (const [i, l] of spec.layers.entries()) {
      if (taken.has(l.name)) throw new ImageSpecError(`layers[${i}].name`, `${l.name} is already the name of a package or runtime layer; give this layer another name`);
      taken.add(l.name);
      const src = l.source;
      progress(`layer ${l.name} (${src.kind})`);
      if (src.kind === 'deb') userLayers.push(await debLayer(debRecords[debIndex++], l.name, l.at));
      else if (src.kind === 'dir') userLayers.push(await layers.fromDir(src.dir, { name: l.name, kind: 'dir', source: src.dir, at: l.at }));
      else {
        userLayers.push(await layers.fromFlist(src.flist, { name: l.name, kind: 'flist', source: src.flist, at: l.at }));
        readStores.push(src.store);
      }
    }
    const store = layers.readStore(readStores);
    try {
      const inInitramfs = [...packageLayers, ...(node?.layers ?? []), ...userLayers.filter((l) => l.info.at === 'initramfs')];
      let layerEntries: CpioEntry[] = [];
      if (inInitramfs.length > 0) {
        const merged = layers.scratch('merged.fl');
        mergeLayers(inInitramfs, merged);
        progress(`reading ${inInitramfs.length} merged layers`);
        layerEntries = await treeEntries(merged, store, pool, [...DEFAULT_STRIP, ...spec.strip]);
      }
      await mkdir(options.outDir, { recursive: true });
      const atBoot: Layer[] = [];
      for (const l of userLayers.filter((u) => u.info.at === 'boot')) {
        progress(`writing layer ${l.info.name} and its chunks for nodes to fetch`);
        atBoot.push({ ...l, info: { ...l.info, file: await exportLayer(l, store, pool, options.outDir) } });
      }
      return await writeImage(spec, options, {
        resolved, packages, sbPackages, release, kernel, loaders, resolution, tree, node, layerEntries,
        layers: [...inInitramfs, ...atBoot].map((l) => l.info),
      });
    } finally {
      await store.close();
    }
  } finally {
    await layers.close();
    await pool.close();
  }
}

interface Assembled {
  resolved: { kernel: AptRecord; packages: AptRecord[] };
  packages: AptRecord[];
  sbPackages: AptRecord[];
  release: string;
  kernel: Buffer;
  loaders: [string, Buffer][];
  resolution: ModuleResolution;
  tree: KernelModuleTree;
  node: { info: NodeRuntimeInfo; program: Buffer } | undefined;
  layerEntries: CpioEntry[];
  layers: LayerInfo[];
}

/** The initramfs from the skeleton, the merged layers, the modules and /init; then every file and the manifest. */
async function writeImage(spec: ImageSpec, options: BuildOptions, a: Assembled): Promise<ImageManifest> {
  const progress = options.progress ?? (() => {});
  const mtime = options.mtime ?? 0;
  const { release, resolution, tree } = a;
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
  for (const e of a.layerEntries) add(e, 'the layers');
  const busybox = entries.find((e) => e.path === 'bin/busybox');
  if (!busybox || busybox.type !== 'file') throw new ImageSpecError(spec.layers.length > 0 ? 'layers' : 'packages', 'no package provides /bin/busybox, which /init runs: add busybox-static (to packages, or as a { deb: busybox-static } layer)');

  if (a.node) checkProgramNeeds(`/${NODE_PATH} (Node ${a.node.info.version})`, a.node.program, new Map([...taken].map(([p, v]) => [p, v.entry])));

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
  // The .fl hashes the node checks what the server hands it against.
  const atBoot = a.layers.filter((l) => l.at === 'boot');
  if (atBoot.length > 0) add({ type: 'file', path: LAYER_LIST_PATH, mode: 0o644, data: Buffer.from(layerList(atBoot)) }, 'the image init');

  progress(`writing the initramfs (${entries.length} entries, ${spec.compression})`);
  const cpio = writeCpio(entries, { mtime });
  const initramfs = await compress(cpio, spec.compression);
  const script = Buffer.from(imageBootScript(spec.name, release, spec.cmdline));

  const artifacts: Record<string, ArtifactInfo> = {};
  const files: [string, Buffer][] = [[KERNEL_FILE, a.kernel], [INITRD_FILE, initramfs], [BOOT_SCRIPT_FILE, script], ...a.loaders];
  for (const [name, data] of files) {
    await writeAtomic(options.outDir, name, data);
    artifacts[name] = { size: data.length, sha256: sha256(data) };
  }
  if (options.media ?? true) {
    progress('writing the boot media (UKI, ISO, USB image)');
    const input = { kernel: join(options.outDir, KERNEL_FILE), initrd: join(options.outDir, INITRD_FILE), cmdline: buildCmdline(spec.cmdline) };
    for (const name of await buildMedia(input, options.outDir, { mtime })) {
      const data = await readFile(join(options.outDir, name));
      artifacts[name] = { size: data.length, sha256: sha256(data) };
    }
  }
  for (const l of a.layers) if (l.file) artifacts[l.file] = { size: l.size, sha256: l.sha256 };
  const manifest: ImageManifest = {
    name: spec.name,
    kernel: { ...pkgInfo(a.resolved.kernel), release },
    packages: a.packages.map(pkgInfo),
    ...(spec.secureBoot ? { secureBoot: a.sbPackages.map(pkgInfo) } : {}),
    layers: a.layers,
    modules: resolution.modules.map((m) => m.name),
    builtinModules: resolution.builtin,
    cmdline: buildCmdline(spec.cmdline),
    compression: spec.compression,
    mtime,
    ...(a.node ? { node: a.node.info } : {}),
    tools: spec.compression === 'zstd' ? { zlib: process.versions.zlib, zstd: process.versions.zstd ?? 'unknown' } : { zlib: process.versions.zlib },
    artifacts,
  };
  await writeAtomic(options.outDir, MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n');
  progress(`wrote ${options.outDir}`);
  return manifest;
}
