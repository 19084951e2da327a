// Kernels that ship their modules xz-compressed (.ko.xz, as newer Debian
// kernels do): the virtio modules of the cached Debian kernel, compressed
// with the xz tool, are found by name, their dependencies read from the
// compressed files, and their bytes come back exactly; a damaged .ko.xz is
// an error naming the file.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KernelModuleTree, readModuleFile, resolveModules } from '../../image/modules.ts';
import { testKernel } from '../helpers/image-kernel.ts';

const MODULES = [
  'drivers/virtio/virtio.ko', 'drivers/virtio/virtio_ring.ko', 'drivers/virtio/virtio_pci.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko', 'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/net/virtio_net.ko', 'drivers/net/net_failover.ko', 'net/core/failover.ko',
];

test('.ko.xz modules: found by name, dependencies followed, decompressed byte for byte; a damaged one is named', async (t) => {
  const kernel = await testKernel();
  const root = await mkdtemp(join(tmpdir(), 'zb-modxz-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const from = join(kernel.tree, 'lib/modules', kernel.release, 'kernel');
  const to = join(root, 'lib/modules', kernel.release, 'kernel');
  for (const m of MODULES) {
    await mkdir(dirname(join(to, m)), { recursive: true });
    await writeFile(join(to, `${m}.xz`), execFileSync('xz', ['-c', '--check=crc32', join(from, m)], { maxBuffer: 64 * 1024 * 1024 }));
  }
  const tree = await KernelModuleTree.open(root, kernel.release);
  t.is(tree.find('virtio_net'), 'kernel/drivers/net/virtio_net.ko.xz');
  const r = await resolveModules(['virtio_pci', 'virtio_net'], tree, kernel.release);
  t.deepEqual(r.modules.map((m) => m.name), ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net']);
  const net = r.modules.find((m) => m.name === 'virtio_net')!;
  t.is(net.path, 'kernel/drivers/net/virtio_net.ko', 'stored uncompressed in the image');
  t.is(net.source, 'kernel/drivers/net/virtio_net.ko.xz');
  t.deepEqual(await readModuleFile(join(tree.dir, net.source)), await readFile(join(from, 'drivers/net/virtio_net.ko')));

  await writeFile(join(to, 'drivers/net/virtio_net.ko.xz'), Buffer.from('not xz at all'));
  const e = await t.throwsAsync(readModuleFile(join(tree.dir, net.source)));
  t.regex(e?.message ?? '', /cannot decompress .*virtio_net\.ko\.xz with xz/);
});
