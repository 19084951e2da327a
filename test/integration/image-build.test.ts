// Real builds from the Debian packages (through the shared cache): two
// builds give byte-identical artifacts, the initramfs holds what /init
// needs, the kernel is the package's file, and the CLI prints the manifest.
// With secureBoot the Debian-signed shim and GRUB land next to vmlinuz, and
// a kernel or loader without a signature is refused.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildImage } from '../../image/build.ts';
import { ImageBuildError } from '../../image/errors.ts';
import type { ImageManifest } from '../../image/build.ts';
import { DebianCache, parseAptShow, runCommand, sha256File } from '../../image/debian.ts';
import type { AptRecord } from '../../image/debian.ts';
import { GRUB_FILE, GRUB_SOURCE, SHIM_FILE, SHIM_SOURCE } from '../../image/secure-boot.ts';
import { peSignature } from '../../image/pe-signature.ts';
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
  // The manifest names the zstd library that packed it (reproducing the bytes needs the same one), not a placeholder.
  t.regex(one.tools.zstd ?? '', /^\d+\.\d+\.\d+$/);
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

test('secureBoot: shimx64.efi and grubx64.efi are the signed package files, listed in the manifest; a warm rebuild is fast and identical', async (t) => {
  const spec = testImageSpec({ secureBoot: true });
  const one = join(base, 'sb1');
  const two = join(base, 'sb2');
  const first = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, outDir: one });
  // Warm means no apt-cache, apt-get or dpkg-deb at all: only re-packing (the time is logged, not
  // asserted, as QEMU tests share the CPU).
  const commands: string[] = [];
  const started = performance.now();
  const second = await buildImage(spec, { cacheDir: TEST_CACHE_DIR, outDir: two, run: (cmd, args, opts) => (commands.push(cmd), runCommand(cmd, args, opts)) });
  t.log(`warm Secure Boot rebuild: ${(performance.now() - started).toFixed(0)} ms`);
  t.deepEqual(commands, []);
  t.deepEqual(second, first);
  t.deepEqual(Object.keys(first.artifacts), ['vmlinuz', 'initramfs.img', 'boot.ipxe', SHIM_FILE, GRUB_FILE, 'zos.efi', 'zos.iso', 'zos-usb.img']);
  for (const name of [...Object.keys(first.artifacts), 'manifest.json']) {
    t.is(sha(await readFile(join(two, name))), sha(await readFile(join(one, name))), name);
  }

  // The loaders are the package files byte for byte, and the packages are apt's.
  t.deepEqual(first.secureBoot?.map((p) => p.package), ['shim-signed', 'grub-efi-amd64-signed']);
  const cache = new DebianCache({ cacheDir: TEST_CACHE_DIR });
  const { stdout } = await run('apt-cache', ['show', '--no-all-versions', ...first.secureBoot!.map((p) => `${p.package}=${p.version}`)], { maxBuffer: 64 * 1024 * 1024 });
  const records = parseAptShow(stdout);
  for (const [i, [file, source]] of ([[SHIM_FILE, SHIM_SOURCE], [GRUB_FILE, GRUB_SOURCE]] as const).entries()) {
    const rec = records[i];
    t.deepEqual(first.secureBoot![i], { package: rec.package, version: rec.version, sha256: rec.sha256 });
    t.is(await sha256File(cache.debPath(rec)), rec.sha256);
    const data = await readFile(join(one, file));
    t.is(first.artifacts[file].sha256, await sha256File(join(await cache.unpack(rec), source)), file);
    t.is(first.artifacts[file].sha256, sha(data), file);
    t.is(first.artifacts[file].size, data.length, file);
    t.true(peSignature(data).signed, file);
  }
  t.deepEqual(JSON.parse(await readFile(join(one, 'manifest.json'), 'utf8')), first);

  // Without secureBoot nothing of it appears.
  const plain = await buildImage(testImageSpec(), { cacheDir: TEST_CACHE_DIR, outDir: join(base, 'sb-off') });
  t.false('secureBoot' in plain);
  t.deepEqual(Object.keys(plain.artifacts), ['vmlinuz', 'initramfs.img', 'boot.ipxe', 'zos.efi', 'zos.iso', 'zos-usb.img']);
  t.deepEqual(plain.kernel, first.kernel);
  t.is(plain.artifacts['initramfs.img'].sha256, first.artifacts['initramfs.img'].sha256);
});

/**
 * A tree cache whose unpacked packages are the real ones (symlinked), except
 * that `replace` rewrites the named package's tree: how an unsigned kernel or
 * loader is fed to a real build without downloading another package.
 */
async function fakeTrees(dir: string, replace: Record<string, (real: string, fake: string) => Promise<void>>): Promise<void> {
  const real = new DebianCache({ cacheDir: TEST_CACHE_DIR });
  const fake = new DebianCache({ cacheDir: TEST_CACHE_DIR, treeDir: dir });
  const records: AptRecord[] = [await real.resolveKernel({ name: 'linux-image-amd64' }), ...(await real.show([{ name: 'busybox-static' }, { name: 'shim-signed' }, { name: 'grub-efi-amd64-signed' }]))];
  await mkdir(dir, { recursive: true });
  for (const rec of records) {
    const from = await real.unpack(rec);
    const change = Object.entries(replace).find(([prefix]) => rec.package.startsWith(prefix))?.[1];
    if (!change) {
      await symlink(from, fake.treePath(rec));
      continue;
    }
    await mkdir(fake.treePath(rec));
    await change(from, fake.treePath(rec));
  }
}

/** Links every top-level entry of `real` into `fake` except `except`. */
async function linkAllBut(real: string, fake: string, except: string): Promise<void> {
  for (const name of await readdir(real)) if (name !== except) await symlink(join(real, name), join(fake, name));
}

test('secureBoot refuses an unsigned kernel, and an unsigned GRUB, in one line and before writing anything', async (t) => {
  const unsigned = '/usr/lib/ipxe/snponly.efi';
  if (!(await readFile(unsigned).catch(() => undefined))) return t.pass('no /usr/lib/ipxe/snponly.efi (package ipxe) to stand in for an unsigned file');
  const kernelTrees = join(base, 'unsigned-kernel-trees');
  let release = '';
  await fakeTrees(kernelTrees, {
    'linux-image-': async (real, fake) => {
      await linkAllBut(real, fake, 'boot');
      await mkdir(join(fake, 'boot'));
      const [vmlinuz] = (await readdir(join(real, 'boot'))).filter((n) => n.startsWith('vmlinuz-'));
      release = vmlinuz.slice('vmlinuz-'.length);
      await copyFile(unsigned, join(fake, 'boot', vmlinuz));
    },
  });
  const out = join(base, 'unsigned-kernel');
  const e = await t.throwsAsync(buildImage(testImageSpec({ secureBoot: true }), { cacheDir: TEST_CACHE_DIR, treeDir: kernelTrees, outDir: out }), { instanceOf: ImageBuildError });
  t.is(e!.message, `linux-image-${release}: /boot/vmlinuz-${release} is not signed: Secure Boot needs Debian's signed kernel package linux-image-${release}, not the -unsigned one`);
  t.is(await readdir(out).catch(() => 'absent'), 'absent');
  // The same kernel is fine without Secure Boot (no media: the stand-in is an EFI program, not a Linux kernel).
  const m = await buildImage(testImageSpec(), { cacheDir: TEST_CACHE_DIR, treeDir: kernelTrees, outDir: join(base, 'unsigned-kernel-ok'), media: false });
  t.is(m.artifacts.vmlinuz.sha256, await sha256File(unsigned));

  const grubTrees = join(base, 'unsigned-grub-trees');
  await fakeTrees(grubTrees, {
    'grub-efi-amd64-signed': async (_real, fake) => {
      await mkdir(join(fake, GRUB_SOURCE, '..'), { recursive: true });
      await copyFile(unsigned, join(fake, GRUB_SOURCE));
    },
  });
  const grub = await t.throwsAsync(buildImage(testImageSpec({ secureBoot: true }), { cacheDir: TEST_CACHE_DIR, treeDir: grubTrees, outDir: join(base, 'unsigned-grub') }), { instanceOf: ImageBuildError });
  t.is(grub!.message, `grub-efi-amd64-signed: /${GRUB_SOURCE} is not signed: the certificate table is empty`);
});
