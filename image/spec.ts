// The image description (image.yaml): which Debian kernel, which kernel
// modules, which Debian packages go into the initramfs, the kernel command
// line of boot.ipxe, the initramfs compression and whether to add the Secure
// Boot loaders (shim and GRUB). Parsing checks every field
// and names the one that is wrong.
import { cmdlineWords, CmdlineError } from '../lib/cmdline.ts';
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
}

export interface NodeSpec {
  /** zeroboot commands the image can run (`zdb`): cli/commands/<name>.ts and what it imports. */
  commands: string[];
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
// Debian policy: package names are lower case letters, digits, + - . ; versions [epoch:]upstream[-revision].
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION = /^[0-9A-Za-z.+~:-]+$/;
const MODULE = /^[A-Za-z0-9_-]{1,64}$/;
const KNOWN_KEYS = ['name', 'kernel', 'modules', 'packages', 'cmdline', 'compression', 'node', 'secureBoot'];

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
  for (const key of Object.keys(v)) if (key !== 'commands') throw new ImageSpecError(`node.${key}`, 'unknown key (known: commands)');
  const commands = v.commands;
  if (!Array.isArray(commands) || commands.length === 0) throw new ImageSpecError('node.commands', 'must be a non-empty list of zeroboot commands (zdb, serve, ...)');
  commands.forEach((c, i) => {
    if (typeof c !== 'string' || !/^[a-z][a-z0-9-]*$/.test(c)) throw new ImageSpecError(`node.commands[${i}]`, `must be a zeroboot command name, got ${JSON.stringify(c)}`);
    if (commands.indexOf(c) !== i) throw new ImageSpecError(`node.commands[${i}]`, `${c} is listed twice`);
  });
  return { commands: commands as string[] };
}

function normaliseModule(name: string): string {
  return name.replace(/-/g, '_');
}

/** Validates a parsed YAML document. */
export function parseImageSpec(doc: unknown): ImageSpec {
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

  const rawPackages = doc.packages ?? ['busybox-static'];
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
  const spec: ImageSpec = { name, kernel, modules, packages, cmdline, compression: compression as Compression };
  // Absent when off, so an image without Secure Boot parses (and builds) exactly as before the key existed.
  if (secureBoot) spec.secureBoot = secureBoot;
  const node = nodeSpec(doc.node);
  if (node) spec.node = node;
  return spec;
}

/** Parses image.yaml text; `source` names the file in errors. */
export function parseImageYaml(text: string, source = 'image.yaml'): ImageSpec {
  const doc = parseYamlText(text, source, imageSpecError);
  try {
    return parseImageSpec(doc);
  } catch (e) {
    if (e instanceof ImageSpecError) throw new ImageSpecError(e.field, e.detail, source);
    throw e;
  }
}
