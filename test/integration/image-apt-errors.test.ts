// `zeroboot image build` when apt cannot give what the spec asks for: a
// package apt does not know (PackageNotFoundError), and a download whose
// bytes differ from apt's index (ChecksumError). The second puts a stand-in
// apt-get first on PATH that "downloads" the wrong bytes; apt-cache is real.
// Each ends in one line on stderr and exit code 1, and nothing bad is cached.
// Also two packages shipping the same file.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;

function build(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(ROOT, 'bin/zeroboot'), ['image', 'build', ...args], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('a package apt does not know: one line that names it and what to check', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zb-image-apt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const yaml = join(dir, 'image.yaml');
  await writeFile(yaml, 'name: nopkg\nkernel: linux-image-amd64\nmodules: [virtio_pci, virtio_net]\npackages: [busybox-static, zb-no-such-package]\n');
  const r = await build([yaml, '-o', join(dir, 'out'), '--cache', join(dir, 'cache')]);
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^zeroboot: (apt has no zb-no-such-package|apt-cache show .*zb-no-such-package.*is the package name right)/);
});

test('a download that does not match apt\'s SHA256 is refused and not kept in the cache', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zb-image-apt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'apt-get'), '#!/bin/sh\n[ "$1" = download ] || exit 100\nfor a; do p=$a; done\necho "not the package" > "${p%%=*}_tampered_amd64.deb"\n');
  await chmod(join(bin, 'apt-get'), 0o755);
  const yaml = join(dir, 'image.yaml');
  await writeFile(yaml, 'name: tampered\nkernel: linux-image-amd64\nmodules: [virtio_pci, virtio_net]\n');
  const cache = join(dir, 'cache');
  const r = await build([yaml, '-o', join(dir, 'out'), '--cache', cache], { ...process.env, PATH: `${bin}:${process.env.PATH}` });
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^zeroboot: \S+ \S+: downloaded file has SHA256 [0-9a-f]{64}, apt's index says [0-9a-f]{64}$/m);
  const debs = await readdir(join(cache, 'debs')).catch(() => []);
  t.deepEqual(debs.filter((n) => n.endsWith('.deb')), [], 'the bad file is not cached');
});

test('a file provided by two packages (busybox-static and busybox both ship /bin/busybox): one line naming the path and both packages, no image', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zb-image-apt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const yaml = join(dir, 'image.yaml');
  await writeFile(yaml, 'name: twice\nkernel: linux-image-amd64\nmodules: [virtio_pci, virtio_net]\npackages: [busybox-static, busybox]\n');
  const out = join(dir, 'out');
  const r = await build([yaml, '-o', out]);
  t.is(r.code, 1, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^zeroboot: bin\/busybox is provided by both busybox-static and busybox$/m);
  t.deepEqual(await readdir(out).catch(() => []), [], 'no image written');
});
