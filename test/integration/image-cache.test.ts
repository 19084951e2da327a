// The shared image builds (harness/qemu-image.ts) the QEMU tests, the
// benchmarks and the provisioning script use: an image is built once per set
// of inputs, and every caller gets its own folder of hard links to that one
// build; other inputs give another build; the store keeps the most recently
// used builds and drops what dead builds left behind; a current folder
// seeds the store when its build is not there.
import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCurrentSpec, specStamp } from '../../harness/qemu-image.ts';
import { TEST_CACHE_DIR, testImageSpec } from '../helpers/image-kernel.ts';

test('one build per set of inputs, shared by hard links; other inputs build again; the store keeps the 6 most recent and drops dead builds', async (t) => {
  t.timeout(10 * 60_000);
  const work = await mkdtemp(path.join(tmpdir(), 'zb-image-cache-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const store = path.join(work, 'store');
  await mkdir(store);
  // Older builds of other inputs, and a folder a killed build left a day ago.
  const old = Date.now() / 1000 - 86_400;
  for (let i = 0; i < 7; i++) {
    const dir = path.join(store, String(i).repeat(64));
    await mkdir(dir);
    await utimes(dir, old + i, old + i);
  }
  const dead = path.join(store, `${'f'.repeat(64)}.build-abc123`);
  await mkdir(dead);
  await utimes(dead, old, old);

  const spec = testImageSpec();
  const stamp = await specStamp(spec);
  const a = await buildCurrentSpec(spec, path.join(work, 'a'), TEST_CACHE_DIR, store);
  const b = await buildCurrentSpec(spec, path.join(work, 'b'), TEST_CACHE_DIR, store);
  const files = (await readdir(a)).filter((n) => !n.startsWith('.'));
  t.true(files.includes('vmlinuz') && files.includes('initramfs.img') && files.includes('manifest.json'), files.join(' '));
  t.deepEqual((await readdir(b)).sort(), (await readdir(a)).sort());
  for (const f of files) {
    const [sa, sb, ss] = await Promise.all([stat(path.join(a, f)), stat(path.join(b, f)), stat(path.join(store, stamp, f))]);
    t.is(sa.ino, ss.ino, `${f}: a's copy is the shared build's file`);
    t.is(sb.ino, ss.ino, `${f}: b got the same build, not a second one`);
  }
  t.is((await readFile(path.join(b, '.zeroboot-build-stamp'), 'utf8')), stamp);

  // The store after the build: the new one and the 5 most recent older ones; no dead build.
  const kept = (await readdir(store)).sort();
  t.deepEqual(kept, [...['2', '3', '4', '5', '6'].map((c) => c.repeat(64)), stamp].sort());

  // Other inputs (another command line): another build, its own files.
  const other = testImageSpec({ cmdline: { console: 'ttyS0', farmer_id: 7 } });
  const c = await buildCurrentSpec(other, path.join(work, 'c'), TEST_CACHE_DIR, store);
  t.not((await stat(path.join(c, 'boot.ipxe'))).ino, (await stat(path.join(a, 'boot.ipxe'))).ino);
  t.regex(await readFile(path.join(c, 'boot.ipxe'), 'utf8'), /farmer_id=7/);
  t.notRegex(await readFile(path.join(a, 'boot.ipxe'), 'utf8'), /farmer_id=7/);
  t.true((await readdir(store)).includes(await specStamp(other)));
  t.is((await readdir(store)).filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 6);

  // A current folder whose build left the store (pruned, or made before it) puts it back, by links.
  await rm(path.join(store, stamp), { recursive: true });
  await buildCurrentSpec(spec, a, TEST_CACHE_DIR, store);
  t.is((await stat(path.join(store, stamp, 'vmlinuz'))).ino, (await stat(path.join(a, 'vmlinuz'))).ino);
});
