// Module resolution: pure ordering rules over a small in-memory module set,
// then the real Debian kernel (the load order pxe.md documents, and
// modules.dep compared with what busybox depmod computes from the same files).
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { ModInfo } from '../../image/elf-modinfo.ts';
import { KernelModuleTree, loadOrderFile, moduleFileName, modulesDep, resolveModules, ModuleError, UnknownModuleError } from '../../image/modules.ts';
import type { ModuleSource } from '../../image/modules.ts';
import { testKernel } from '../helpers/image-kernel.ts';
import type { TestKernel } from '../helpers/image-kernel.ts';

const run = promisify(execFile);

function source(mods: Record<string, string[]>, opts: { builtin?: string[]; vermagic?: string } = {}): ModuleSource & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    find: (name) => (name in mods ? `kernel/${name.replace(/_/g, '-')}.ko` : opts.builtin?.includes(name) ? 'builtin' : undefined),
    info: async (path): Promise<ModInfo> => {
      reads.push(path);
      const name = moduleFileName(path);
      return { name, depends: mods[name], aliases: [], vermagic: opts.vermagic ?? '6.1.0-test SMP mod_unload', softdep: { pre: [], post: [] }, fields: {} };
    },
  };
}

test('dependencies load first; otherwise the asked order; shared dependencies once', async (t) => {
  const src = source({ a: ['c', 'b'], b: ['d'], c: ['d'], d: [], e: ['d'] });
  const r = await resolveModules(['e', 'a'], src, '6.1.0-test');
  t.deepEqual(r.modules.map((m) => m.name), ['d', 'e', 'b', 'c', 'a']);
  t.deepEqual(r.modules.find((m) => m.name === 'a')!.depends, ['b', 'c']);
  t.is(src.reads.length, 5);
  t.is(loadOrderFile(r), 'kernel/d.ko\nkernel/e.ko\nkernel/b.ko\nkernel/c.ko\nkernel/a.ko\n');
});

test('the order does not depend on how depends= lists its modules', async (t) => {
  const one = await resolveModules(['a'], source({ a: ['b', 'c', 'd'], b: [], c: [], d: [] }));
  const two = await resolveModules(['a'], source({ a: ['d', 'c', 'b'], b: [], c: [], d: [] }));
  t.deepEqual(one.modules.map((m) => m.name), two.modules.map((m) => m.name));
});

test('dashes and underscores name the same module', async (t) => {
  const r = await resolveModules(['crc-t10dif'], source({ crc_t10dif: ['crct10dif_common'], crct10dif_common: [] }));
  t.deepEqual(r.modules.map((m) => m.path), ['kernel/crct10dif-common.ko', 'kernel/crc-t10dif.ko']);
});

test('built-in modules are reported, not loaded', async (t) => {
  const r = await resolveModules(['nvme', 'x'], source({ x: ['nvme_core'] }, { builtin: ['nvme', 'nvme_core'] }));
  t.deepEqual(r.modules.map((m) => m.name), ['x']);
  t.deepEqual(r.builtin, ['nvme']);
});

test('unknown modules are named, with the module that needs them', async (t) => {
  const e1 = await t.throwsAsync(resolveModules(['e1000'], source({ virtio: [] }), '6.1.0-56-cloud-amd64'), { instanceOf: UnknownModuleError });
  t.is(e1.module, 'e1000');
  t.is(e1.message, 'kernel module e1000 is neither a module file nor built into kernel 6.1.0-56-cloud-amd64');
  const e2 = await t.throwsAsync(resolveModules(['a'], source({ a: ['ghost'] })), { instanceOf: UnknownModuleError });
  t.regex(e2.message, /ghost, which a depends on,/);
});

test('a cycle and a module built for another kernel are errors', async (t) => {
  await t.throwsAsync(resolveModules(['a'], source({ a: ['b'], b: ['a'] })), { instanceOf: ModuleError, message: /cycle: a -> b -> a/ });
  await t.throwsAsync(resolveModules(['a'], source({ a: [] }, { vermagic: '6.1.0-other SMP' }), '6.1.0-test'), { instanceOf: ModuleError, message: /built for kernel 6\.1\.0-other/ });
});

test('modules.dep lists transitive dependencies nearest first', async (t) => {
  const r = await resolveModules(['a'], source({ a: ['b'], b: ['c'], c: [] }));
  t.is(modulesDep(r), 'kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n');
});

let kernel: TestKernel;
test.before(async () => {
  kernel = await testKernel();
});

test('real kernel: virtio_pci, virtio_net, virtio_blk load in the documented order', async (t) => {
  const tree = await KernelModuleTree.open(kernel.tree, kernel.release);
  t.true(tree.size > 3000);
  const r = await resolveModules(['virtio_pci', 'virtio_net', 'virtio_blk'], tree, kernel.release);
  t.deepEqual(r.modules.map((m) => m.name), ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'failover', 'net_failover', 'virtio_net', 'virtio_blk']);
  await t.throwsAsync(resolveModules(['no_such_module'], tree, kernel.release), { instanceOf: UnknownModuleError, message: /no_such_module/ });
  t.is(tree.find('af_packet'), 'builtin');
  t.deepEqual((await resolveModules(['af_packet'], tree, kernel.release)).builtin, ['af_packet']);
});

test('real kernel: modules.dep matches busybox depmod run over the same module files', async (t) => {
  const tree = await KernelModuleTree.open(kernel.tree, kernel.release);
  const r = await resolveModules(['virtio_pci', 'virtio_net', 'e1000e', 'sd_mod', 'ahci', 'virtio_scsi'], tree, kernel.release);
  const base = await mkdtemp(join(tmpdir(), 'zb-depmod-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'lib/modules', kernel.release);
  for (const m of r.modules) {
    await mkdir(dirname(join(dir, m.path)), { recursive: true });
    await copyFile(join(tree.dir, m.source), join(dir, m.path));
  }
  await run('busybox', ['depmod', '-b', base, kernel.release]);
  const parse = (text: string) =>
    new Map(text.trim().split('\n').map((line) => {
      const [mod, deps] = line.split(':');
      return [mod, deps.trim().split(/\s+/).filter(Boolean)] as const;
    }));
  const ours = parse(modulesDep(r));
  const theirs = parse(await readFile(join(dir, 'modules.dep'), 'utf8'));
  t.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
  for (const [mod, deps] of ours) t.deepEqual([...deps].sort(), [...theirs.get(mod)!].sort(), mod);
  // Loading right to left, every module's own dependencies are already in.
  for (const [, deps] of ours) {
    deps.forEach((d, i) => {
      for (const dd of ours.get(d)!) t.true(deps.indexOf(dd) > i, `${dd} loads before ${d}`);
    });
  }
});
