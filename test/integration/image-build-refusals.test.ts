// Builds the image spec refuses, from the cached Debian packages (the same
// cache as image-build.test.ts): a virtio driver without a virtio transport,
// and no package providing /bin/busybox. Each is one error naming the fix.
import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../image/build.ts';
import { ImageSpecError } from '../../image/spec.ts';
import { testImageSpec, TEST_CACHE_DIR } from '../helpers/image-kernel.ts';

test('a virtio NIC driver without virtio_pci or virtio_mmio is refused, naming the driver and the fix', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'zb-image-refuse-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const e = await t.throwsAsync(buildImage(testImageSpec({ modules: ['virtio_net', 'e1000'] }), { cacheDir: TEST_CACHE_DIR, outDir: out }), { instanceOf: ImageSpecError });
  t.regex(e?.message ?? '', /virtio_net needs a virtio transport: add virtio_pci \(PCI, as QEMU uses\) or virtio_mmio/);
  t.deepEqual(await readdir(out), [], 'nothing is written');
  // With the transport the same spec builds.
  await t.notThrowsAsync(buildImage(testImageSpec({ modules: ['virtio_mmio', 'virtio_net'] }), { cacheDir: TEST_CACHE_DIR, outDir: out }));
});

test('an image whose packages hold no /bin/busybox is refused: /init could not run', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'zb-image-refuse-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const e = await t.throwsAsync(buildImage(testImageSpec({ packages: ['libgcc-s1'] }), { cacheDir: TEST_CACHE_DIR, outDir: out }), { instanceOf: ImageSpecError });
  t.regex(e?.message ?? '', /no package provides \/bin\/busybox, which \/init runs: add busybox-static/);
  t.deepEqual(await readdir(out), [], 'nothing is written');
});
