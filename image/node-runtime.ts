// The image's Node runtime (spec key `node`): the Node binary that runs the
// build (byte for byte), zeroboot's sources for the commands the image must
// run (type-stripped to .js), and /usr/bin/zeroboot, which runs them. The sources are
// the import closure of cli/zeroboot.ts and cli/commands/<command>.ts
// (static imports, worker modules, and a command's literal import() of its
// subcommands' modules), so an image that runs `zeroboot zdb` carries zdb/
// but not the boot server. npm packages those files import are carried
// whole from node_modules with their dependencies (`flist`: hash-wasm,
// snappy and its native binding, tar-stream; the S3 client is loaded only
// for an s3:// store, so it is not carried and s3:// does not work there).
// The program's shared libraries come from the image's Debian packages
// (libc6, libstdc++6, libgcc-s1); checkProgramNeeds refuses an image in
// which the loader or a DT_NEEDED library is missing, naming it.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CpioEntry } from './cpio.ts';
import { AGENT_JS_NODE_FLAGS } from '../agent/runtime-flags.ts';
import { elfNeeds } from './elf-needs.ts';

export class NodeRuntimeError extends Error {}

/** Where the runtime lives in the image. */
export const NODE_PATH = 'usr/bin/node';
export const SOURCES_DIR = 'opt/zeroboot';
export const ZEROBOOT_PATH = 'usr/bin/zeroboot';

/** The repository the builder runs from: the sources the image carries. */
export const SOURCE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface NodeRuntimeOptions {
  /** The Node program to carry; default the one running the build. */
  nodeBinary?: string;
  /** The zeroboot checkout whose sources go in; default this one. */
  sourceRoot?: string;
}

export interface NodeRuntimeInfo {
  /** `node --version` of the carried binary. */
  version: string;
  size: number;
  sha256: string;
  /** zeroboot commands the image can run. */
  commands: string[];
  /** The carried TypeScript sources (and package.json): count and bytes. */
  sources: { files: number; size: number };
}

export interface NodeRuntime {
  entries: CpioEntry[];
  info: NodeRuntimeInfo;
  /** The carried program, for checkProgramNeeds. */
  program: Buffer;
}

// import/export ... from '<spec>' (multi-line braces included) and bare `import '<spec>'`.
const FROM = /(?:^|[\n;])[ \t]*((?:import|export)\b[^;'"`]*?)\bfrom\s*['"]([^'"\n]+)['"]/g;
const SIDE_EFFECT = /(?:^|[\n;])[ \t]*import\s*['"]([^'"\n]+)['"]/g;
// A worker's module: new Worker(new URL('./chunk-worker.ts', import.meta.url)).
const WORKER_URL = /new URL\(\s*['"](\.{1,2}\/[^'"\n]+)['"]\s*,\s*import\.meta\.url\s*\)/g;
// import('<literal>'): a command's subcommands load their modules this way.
const DYNAMIC = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;
/**
 * Files whose relative dynamic imports are followed: the commands (cli/zeroboot.ts's are the command table, chosen by
 * node.commands) and the agent's (modules it loads after its first report, to keep them off that report's path).
 */
const FOLLOW_DYNAMIC = /^(cli\/commands|agent)\//;

/**
 * The module specifiers a TypeScript file imports at run time (type-only
 * imports are erased by Node, so left out). An npm package imported on
 * demand (the agent's systeminformation) is always one; a relative dynamic
 * import only with `dynamic` (elsewhere it is a choice made at run time,
 * such as the S3 client of an s3:// store).
 */
export function runtimeImports(source: string, dynamic = false): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(FROM)) if (!/^(?:import|export)\s+type\b/.test(m[1])) out.push(m[2]);
  for (const m of source.matchAll(SIDE_EFFECT)) out.push(m[1]);
  for (const m of source.matchAll(WORKER_URL)) out.push(m[1]);
  for (const m of source.matchAll(DYNAMIC)) if (dynamic || !m[1].startsWith('.')) out.push(m[1]);
  return out;
}

/** `name` of a bare specifier: `snappy`, `@scope/pkg` (a subpath dropped). */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every file of the installed npm packages `names` and of their (installed optional) dependencies, under root/node_modules. */
async function packageFiles(root: string, names: Iterable<string>, importer: Map<string, string>): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const queue = [...names];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const dir = join(root, 'node_modules', name);
    const manifest = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
    if (manifest === undefined) {
      const by = importer.get(name);
      // An optional dependency for another platform is simply absent.
      if (by === undefined) continue;
      throw new NodeRuntimeError(`${by} imports the npm package "${name}", which is not installed in ${join(root, 'node_modules')}: run npm install, or drop the import`);
    }
    const pkg = JSON.parse(manifest) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    queue.push(...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}));
    for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) out.push(relative(root, join(e.parentPath, e.name)).split(sep).join('/'));
    }
  }
  return out;
}

/**
 * Paths (relative to `root`, sorted) of the entry files and every file they
 * import, transitively, and of the npm packages they import (whole, with
 * their dependencies, from root/node_modules).
 */
export async function importClosure(root: string, entries: readonly string[]): Promise<string[]> {
  const seen = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const rel = queue.pop()!;
    if (seen.has(rel)) continue;
    const text = await readFile(join(root, rel), 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new NodeRuntimeError(`cannot read ${rel} in ${root}: ${e.code ?? e.message}`);
    });
    seen.add(rel);
    for (const spec of runtimeImports(text, FOLLOW_DYNAMIC.test(rel))) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('./') && !spec.startsWith('../')) {
        const name = packageName(spec);
        if (!packages.has(name)) packages.set(name, rel);
        continue;
      }
      const target = relative(root, resolve(root, dirname(rel), spec));
      if (target.startsWith('..') || target.split(sep).includes('node_modules')) throw new NodeRuntimeError(`${rel} imports ${spec}, outside the zeroboot sources`);
      queue.push(target.split(sep).join('/'));
    }
  }
  return [...seen, ...(await packageFiles(root, packages.keys(), packages))].sort();
}

// Where a carried file names another by a relative specifier: from '…', import '…', import('…'), new URL('…', import.meta.url).
const RELATIVE_TS = /(\bfrom\s*|\bimport\s*\(?\s*|\bnew URL\(\s*)(['"])(\.{1,2}\/[^'"\n]*?)\.ts\2/g;

/**
 * A carried TypeScript file as the image holds it, a .js module: types
 * blanked out by Node's own stripper (lines and columns stay, so stack
 * traces still point into the .ts sources) and relative `.ts` specifiers
 * made `.js`. Node then runs plain JavaScript and never loads its type
 * stripper, which kept ~17 MB of RSS in every zeroboot process.
 */
export function strippedModule(rel: string, source: string): string {
  let js: string;
  try {
    js = stripTypeScriptTypes(source, { mode: 'strip' });
  } catch (e) {
    throw new NodeRuntimeError(`${rel}: Node cannot strip its types: ${(e as Error).message.split('\n')[0]}`);
  }
  js = js.replace(RELATIVE_TS, (_m, before: string, q: string, spec: string) => `${before}${q}${spec}.js${q}`);
  const left = runtimeImports(js, true).find((spec) => spec.startsWith('.') && spec.endsWith('.ts'));
  if (left !== undefined) throw new NodeRuntimeError(`${rel}: the import of ${left} was not made .js`);
  return js;
}

/** A carried file's path in the image: zeroboot's .ts sources become .js. */
export function carriedPath(rel: string): string {
  return rel.endsWith('.ts') && !rel.startsWith('node_modules/') ? `${rel.slice(0, -3)}.js` : rel;
}

/** Node's flags per command in the image's /usr/bin/zeroboot (bin/zeroboot passes the same). */
const COMMAND_FLAGS: Readonly<Record<string, readonly string[]>> = { agent: AGENT_JS_NODE_FLAGS };

/** How the image's /usr/bin/zeroboot starts `zeroboot <command>`: Node's flags and the entry script, relative to the image root. */
export function commandLaunch(command: string): { flags: string[]; script: string } {
  return { flags: ['--disable-warning=ExperimentalWarning', ...(COMMAND_FLAGS[command] ?? [])], script: `${SOURCES_DIR}/${carriedPath('cli/zeroboot.ts')}` };
}

function wrapper(commands: readonly string[]): string {
  const line = (c: string) => {
    const { flags, script } = commandLaunch(c);
    return `exec /${NODE_PATH} ${flags.join(' ')} /${script} "$@"`;
  };
  const special = commands.filter((c) => (COMMAND_FLAGS[c] ?? []).length > 0);
  return `#!/bin/busybox sh
# zeroboot in the image (generated by image/node-runtime.ts): Node runs the type-stripped sources under /${SOURCES_DIR}.
${special.map((c) => `[ "$1" = ${c} ] && ${line(c)}\n`).join('')}${line('')}
`;
}

/** The runtime's image entries and manifest facts for `commands`. */
export async function nodeRuntime(commands: readonly string[], options: NodeRuntimeOptions = {}): Promise<NodeRuntime> {
  const root = options.sourceRoot ?? SOURCE_ROOT;
  const binary = await realpath(options.nodeBinary ?? process.execPath);
  const program = await readFile(binary);
  const { stdout } = await promisify(execFile)(binary, ['--version']).catch((e: Error) => {
    throw new NodeRuntimeError(`cannot run ${binary} --version: ${e.message.split('\n')[0]}`);
  });
  const version = stdout.trim();
  for (const c of commands) {
    if (!/^[a-z][a-z0-9-]*$/.test(c)) throw new NodeRuntimeError(`"${c}" is not a zeroboot command name`);
  }
  const files = await importClosure(root, ['cli/zeroboot.ts', ...commands.map((c) => `cli/commands/${c}.ts`)]);
  const entries: CpioEntry[] = [
    { type: 'file', path: NODE_PATH, mode: 0o755, data: program },
    { type: 'file', path: ZEROBOOT_PATH, mode: 0o755, data: Buffer.from(wrapper(commands)) },
  ];
  let size = 0;
  // package.json says "type": "module", so Node reads the .js files as ES modules.
  for (const rel of ['package.json', ...files]) {
    let data = await readFile(join(root, rel));
    const path = carriedPath(rel);
    if (path !== rel) data = Buffer.from(strippedModule(rel, data.toString('utf8')));
    size += data.length;
    entries.push({ type: 'file', path: `${SOURCES_DIR}/${path}`, mode: 0o644, data });
  }
  const info: NodeRuntimeInfo = {
    version,
    size: program.length,
    sha256: createHash('sha256').update(program).digest('hex'),
    commands: [...commands],
    sources: { files: files.length + 1, size },
  };
  return { entries, info, program };
}

/** Library folders the dynamic loader searches without an ld.so.cache (Debian's multiarch ones first). */
const LIBRARY_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'lib64', 'usr/lib64', 'lib', 'usr/lib'];

/** Follows symlinks among the image's entries; undefined when the path (or a link's target) is not in the image. */
function resolveEntry(path: string, entries: ReadonlyMap<string, CpioEntry>): CpioEntry | undefined {
  let p = path;
  for (let hop = 0; hop < 16; hop++) {
    const e = entries.get(p);
    if (!e || e.type !== 'symlink') return e;
    p = e.target.startsWith('/') ? e.target.slice(1) : join(dirname(p), e.target);
  }
  return undefined;
}

/** Throws when the image lacks the program's loader or one of its libraries. */
export function checkProgramNeeds(name: string, program: Buffer, entries: ReadonlyMap<string, CpioEntry>): void {
  const needs = elfNeeds(program);
  const missing: string[] = [];
  if (needs.interpreter && resolveEntry(needs.interpreter.replace(/^\/+/, ''), entries)?.type !== 'file') missing.push(`its loader ${needs.interpreter}`);
  for (const lib of needs.needed) {
    if (!LIBRARY_DIRS.some((d) => resolveEntry(`${d}/${lib}`, entries)?.type === 'file')) missing.push(lib);
  }
  if (missing.length > 0) {
    throw new NodeRuntimeError(`${name} needs ${missing.join(', ')}, which no package of the image provides: add the Debian packages holding them (libc6, libstdc++6, libgcc-s1 for Node; \`dpkg -S <file>\` names others)`);
  }
}
