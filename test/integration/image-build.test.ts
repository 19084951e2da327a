// Real builds from the Debian packages (through the shared cache): two
// builds give byte-identical artifacts, the initramfs holds what /init
// needs, the kernel is the package's file, and the CLI prints the manifest.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildImage } from '../../image/build.ts';
import type { ImageManifest } from '../../image/build.ts';
import { DebianCache, parseAptShow, sha256File } from '../../image/debian.ts';
import { testImageSpec, testKernel, TEST_CACHE_DIR } from '../helpers/image-kernel.ts';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
let base = '';

test.before(async () => {
  base = await mkdtemp(join(tmpdir(), 'zb-image-build-'));
});
test.after.always(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function list(dir: string, decompress: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `${decompress} < initramfs.img | cpio -itv --numeric-uid-gid`], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

test('two builds (the second unpacking the packages afresh) give the same sha256 for every artifact', async (t) => {
  const spec = testImageSpec();
  const a = join(base, 'a');
  const b = join(base, 'b');
  const first = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, outDir: a });
  const second = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, treeDir: join(base, 'trees'), outDir: b });
  t.deepEqual(second, first);
  for (const name of ['vmlinuz', 'initramfs.img', 'boot.ipxe', 'manifest.json']) {
    t.is(sha(await readFile(join(b, name))), sha(await readFile(join(a, name))), name);
  }
  for (const [name, info] of Object.entries(first.artifacts)) {
    const data = await readFile(join(a, name));
    t.is(info.sha256, sha(data), name);
    t.is(info.size, data.length, name);
  }
  t.deepEqual(JSON.parse(await readFile(join(a, 'manifest.json'), 'utf8')), first);
});

test('the initramfs holds /init, busybox, the modules with their dependencies and modules.dep; owners 0, mtime 0', async (t) => {
  const dir = join(base, 'content');
  const m = await buildImage(testImageSpec(), { cacheDir: TEST_CACHE_DIR, outDir: dir });
  const listing = await list(dir, 'gzip -dc');
  const rel = m.kernel.release;
  for (const path of [
    'init', 'bin/busybox', 'dev/console', 'dev/null', 'etc/zeroboot/udhcpc.script',
    `lib/modules/${rel}/kernel/drivers/net/virtio_net.ko`, `lib/modules/${rel}/kernel/drivers/virtio/virtio_pci.ko`,
    `lib/modules/${rel}/kernel/drivers/net/net_failover.ko`, `lib/modules/${rel}/kernel/net/core/failover.ko`,
    `lib/modules/${rel}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko`,
    `lib/modules/${rel}/modules.dep`, `lib/modules/${rel}/zeroboot.load`,
  ]) t.regex(listing, new RegExp(` ${path.replace(/[.]/g, '\\.')}$`, 'm'), path);
  t.notRegex(listing, /usr\/share\/doc/);
  for (const line of listing.trim().split('\n')) t.regex(line, /^\S+ +\d+ 0 +0 .* Jan +1 +1970 /, line);
  t.deepEqual(m.modules, ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net', 'e1000']);
  const { stdout } = await run('sh', ['-c', `gzip -dc < initramfs.img | cpio -i --to-stdout lib/modules/${rel}/zeroboot.load`], { cwd: dir });
  t.is(stdout.trim().split('\n').length, m.modules.length);
  t.regex(await readFile(join(dir, 'boot.ipxe'), 'utf8'), /^imgfetch --name kernel vmlinuz console=ttyS0 BOOTIF=01-\$\{netX\/mac:hexhyp\} initrd=initrd0 /m);
});

test('vmlinuz is the package file; the package matches apt\'s SHA256', async (t) => {
  const dir = join(base, 'kernel');
  const m = await buildImage(testImageSpec(), { cacheDir: TEST_CACHE_DIR, outDir: dir });
  const kernel = await testKernel();
  t.is(m.artifacts.vmlinuz.sha256, await sha256File(kernel.vmlinuz));
  const { stdout } = await run('apt-cache', ['show', `${m.kernel.package}=${m.kernel.version}`], { maxBuffer: 64 * 1024 * 1024 });
  t.is(parseAptShow(stdout)[0].sha256, m.kernel.sha256);
  const cache = new DebianCache({ cacheDir: TEST_CACHE_DIR });
  const deb = cache.debPath({ ...parseAptShow(stdout)[0] });
  t.is(await sha256File(deb), m.kernel.sha256);
});

test('zstd initramfs unpacks with the zstd tool and is reproducible', async (t) => {
  const spec = testImageSpec({ compression: 'zstd' });
  const one = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, outDir: join(base, 'z1') });
  const two = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, outDir: join(base, 'z2') });
  t.is(one.artifacts['initramfs.img'].sha256, two.artifacts['initramfs.img'].sha256);
  t.regex(await list(join(base, 'z1'), 'zstd -dc'), / init$/m);
  t.truthy(one.tools.zstd);
});

test('CLI: image build --json prints the manifest; SOURCE_DATE_EPOCH stamps the entries; bad input is one line', async (t) => {
  const yaml = join(base, 'image.yaml');
  await writeFile(yaml, 'name: cli\nkernel: linux-image-amd64\nmodules: [virtio_pci, virtio_net]\ncmdline: { console: ttyS0, runmode: prod }\n');
  const out = join(base, 'cli');
  const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
  const { stdout } = await run(join(ROOT, 'bin/zeroboot'), ['image', 'build', yaml, '-o', out, '--cache', TEST_CACHE_DIR, '--json'], { env, maxBuffer: 16 * 1024 * 1024 });
  const printed = JSON.parse(stdout) as ImageManifest;
  t.deepEqual(printed, JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')));
  t.is(printed.mtime, 1700000000);
  t.is(printed.cmdline, 'runmode=prod console=ttyS0');
  t.regex(await list(out, 'gzip -dc'), /Nov 14 +2023 init$/m);

  await writeFile(yaml, 'name: cli\nkernel: linux-image-amd64\nmodules: [virtio_pci, no_such_driver]\n');
  const bad = await run(join(ROOT, 'bin/zeroboot'), ['image', 'build', yaml, '-o', out, '--cache', TEST_CACHE_DIR]).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  t.is(bad?.code, 1);
  t.regex(bad!.stderr, /^zeroboot: kernel module no_such_driver is neither a module file nor built into kernel \S+\n$/);
  const usage = await run(join(ROOT, 'bin/zeroboot'), ['image', 'build', yaml]).catch((e: { code: number; stderr: string }) => e);
  t.is((usage as { code: number }).code, 2);
});
