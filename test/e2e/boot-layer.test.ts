// An `at: boot` layer end to end (issue 11): the node image (images/node.yaml)
// with `zeroboot flist` added and a layer holding a small program, marked
// `at: boot`, so it is not in the initramfs but beside it (<name>.fl and
// chunks/). The rig's server offers that folder's flists and chunks (key
// `flists`) and the profile names the server (zeroboot.server=); the guest's
// /init fetches the .fl, checks its sha256, unpacks it with `zeroboot flist
// unpack` into /layers/hello, prints ZEROBOOT-LAYER, and then runs the
// program from the layer (zeroboot.exec=), which prints a line of its own.
// Also logs the seconds from QEMU's start to ZEROBOOT-UP and to
// ZEROBOOT-LAYER, with the host's load.
import test from 'ava';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlReader } from '../../flist/fl-file.ts';
import { buildImage } from '../../image/build.ts';
import type { ImageManifest } from '../../image/build.ts';
import { MARKERS } from '../../image/init.ts';
import { parseImageYaml } from '../../image/spec.ts';
import { IMAGE_CACHE } from '../../harness/qemu-image.ts';
import { loadProfile } from '../../qemu/profile.ts';
import { startRig } from '../../qemu/rig.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// TCG on a loaded 2-core machine: a 40 MB initramfs through iPXE, then Node twice (unpack, nothing else).
const BOOT_MS = 12 * 60_000;
const HELLO = 'ZEROBOOT-HELLO from-an-at-boot-layer';

test('a node fetches an at: boot layer from the boot server, checks it, unpacks it into /layers/<name> and runs a program from it', async (t) => {
  t.timeout(30 * 60_000);
  const work = await mkdtemp(path.join(tmpdir(), 'zb-boot-layer-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const tree = path.join(work, 'hello');
  await mkdir(path.join(tree, 'bin'), { recursive: true });
  await mkdir(path.join(tree, 'share'), { recursive: true });
  await writeFile(path.join(tree, 'bin/hello'), `#!/bin/sh\necho "${HELLO} $(cat /layers/hello/share/greeting)"\n`);
  await chmod(path.join(tree, 'bin/hello'), 0o755);
  await writeFile(path.join(tree, 'share/greeting'), 'hi\n');

  const specFile = path.join(ROOT, 'images/node.yaml');
  const spec = parseImageYaml(await readFile(specFile, 'utf8'), specFile);
  spec.node!.commands = [...spec.node!.commands, 'flist'];
  spec.layers.push({ name: 'hello', at: 'boot', source: { kind: 'dir', dir: tree } });
  const out = path.join(work, 'image');
  const built = Date.now();
  const manifest: ImageManifest = await buildImage(spec, { cacheDir: IMAGE_CACHE, outDir: out });
  t.log(`image built in ${((Date.now() - built) / 1000).toFixed(0)} s`);
  const layer = manifest.layers.find((l) => l.name === 'hello')!;
  t.is(layer.file, 'hello.fl');

  // What ZEROBOOT-LAYER must count: the layer's regular files and their bytes.
  const fl = FlReader.open(path.join(out, 'hello.fl'));
  let files = 0;
  let bytes = 0;
  for (const e of fl.walk()) if (e.type === 'file') (files++, (bytes += e.size));
  fl.close();

  const rig = await startRig({ imageDir: out, kvm: 'auto', kernelArgs: { 'zeroboot.exec': '/layers/hello/bin/hello' } });
  t.teardown(() => rig.stop());
  const base = await loadProfile('small-bios');
  const [vm] = await rig.boot({ ...base, name: 'layer-guest', cpus: 1, memoryMiB: 1536 });
  const fail = MARKERS.fail.source;
  const up = await vm.console.waitFor(new RegExp(`${MARKERS.up.source}|${fail}`), BOOT_MS);
  t.regex(up[0], MARKERS.up, up[0]);
  const upSeconds = (Date.now() - vm.startedAt) / 1000;
  const got = await vm.console.waitFor(new RegExp(`${MARKERS.layer.source}|${fail}`), BOOT_MS);
  const layerSeconds = (Date.now() - vm.startedAt) / 1000;
  const m = MARKERS.layer.exec(got[0]);
  t.truthy(m, got[0]);
  t.deepEqual([m![1], Number(m![2]), Number(m![3])], ['hello', files, bytes]);
  const hello = await vm.console.waitFor(new RegExp(`${HELLO} \\S+|${fail}`), BOOT_MS);
  t.is(hello[0].trim(), `${HELLO} hi`);
  t.regex(vm.console.log(), MARKERS.exec);
  t.log(`${rig.accel}: QEMU start to ZEROBOOT-UP ${upSeconds.toFixed(1)} s, to ZEROBOOT-LAYER ${layerSeconds.toFixed(1)} s (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
});
