// The Debian kernel the image tests use, fetched and unpacked through the
// builder's own cache (the default /var/cache/zeroboot, or ZEROBOOT_IMAGE_CACHE)
// exactly as `zeroboot image build` does: the first run downloads it.
import { DebianCache } from '../../image/debian.ts';
import { kernelLayout } from '../../image/build.ts';
import { parseImageSpec } from '../../image/spec.ts';
import type { ImageSpec } from '../../image/spec.ts';

export const TEST_CACHE_DIR = process.env.ZEROBOOT_IMAGE_CACHE ?? '/var/cache/zeroboot';
/** The generic kernel: it has e1000 as well as the virtio drivers. */
export const TEST_KERNEL_PACKAGE = 'linux-image-amd64';

export interface TestKernel {
  /** The unpacked kernel package. */
  tree: string;
  release: string;
  vmlinuz: string;
  package: string;
  version: string;
}

export async function testKernel(cache = new DebianCache({ cacheDir: TEST_CACHE_DIR })): Promise<TestKernel> {
  const rec = await cache.resolveKernel({ name: TEST_KERNEL_PACKAGE });
  const tree = await cache.unpack(rec);
  const { release, vmlinuz } = await kernelLayout(tree, rec.package);
  return { tree, release, vmlinuz, package: rec.package, version: rec.version };
}

/** A small image: virtio and e1000 NICs, busybox. */
export function testImageSpec(extra: Record<string, unknown> = {}): ImageSpec {
  return parseImageSpec({
    name: 'test',
    kernel: { package: TEST_KERNEL_PACKAGE },
    modules: ['virtio_pci', 'virtio_net', 'e1000'],
    packages: ['busybox-static'],
    cmdline: { console: 'ttyS0' },
    compression: 'gzip',
    ...extra,
  });
}
