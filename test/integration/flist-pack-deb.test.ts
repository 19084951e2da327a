import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run, snapshot, zeroboot } from '../helpers/flist-pack.ts';

const DEB_CACHE = '/var/cache/zeroboot/debs';
const cached = existsSync(DEB_CACHE) ? readdirSync(DEB_CACHE).find((f) => f.startsWith('libgcc-s1_') && f.endsWith('.deb')) : undefined;

let dir: string;
let pkg: string;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-pack-deb-'));
  pkg = path.join(dir, 'pkg');
  await mkdir(path.join(pkg, 'DEBIAN'), { recursive: true });
  await writeFile(path.join(pkg, 'DEBIAN/control'), 'Package: zb-test\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.invalid>\nDescription: test package\n');
  await mkdir(path.join(pkg, 'usr/bin'), { recursive: true });
  await mkdir(path.join(pkg, 'usr/share/zb'), { recursive: true });
  await writeFile(path.join(pkg, 'usr/bin/tool'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(pkg, 'usr/bin/tool'), 0o4755);
  await writeFile(path.join(pkg, 'usr/share/zb/data'), randomBytes(1_200_000));
  await writeFile(path.join(pkg, 'usr/share/zb/empty'), '');
  await symlink('../share/zb/data', path.join(pkg, 'usr/bin/data-link'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Packs the .deb, unpacks the .fl, and compares with what dpkg-deb -x makes of it. */
async function sameAsDpkg(t: import('ava').ExecutionContext, deb: string, name: string): Promise<void> {
  const fl = path.join(dir, `${name}.fl`);
  const r = await zeroboot(['flist', 'pack', deb, '-o', fl, '--store', `dir://${path.join(dir, 'store')}`]);
  t.is(r.code, 0, r.stderr);
  const ours = path.join(dir, `${name}-unpacked`);
  const u = await zeroboot(['flist', 'unpack', fl, ours]);
  t.is(u.code, 0, u.stderr);
  const theirs = path.join(dir, `${name}-dpkg`);
  await run('dpkg-deb', ['-x', deb, theirs]);
  const want = await snapshot(theirs);
  // dpkg-deb -x (GNU tar) makes symlinks last, after it set their directory's
  // mtime, which the symlink then bumps: take directory mtimes from the archive
  const listed = await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -tv --utc --full-time', 'sh', deb]);
  for (const line of listed.split('\n')) {
    const m = /^d\S+\s+\S+\s+\d+\s+(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) \.\/(.+?)\/?$/.exec(line);
    if (m && want[m[3]] !== undefined) (want[m[3]] as { mtime: number }).mtime = Date.parse(`${m[1]}T${m[2]}Z`) / 1000;
  }
  t.true(Object.keys(want).length > 3, 'dpkg-deb extracted something');
  t.deepEqual(await snapshot(ours), want);
}

for (const compression of ['xz', 'gzip', 'zstd', 'none']) {
  test(`a .deb built by dpkg-deb (data.tar ${compression}) packs to the tree dpkg-deb -x gives`, async (t) => {
    const deb = path.join(dir, `zb-test-${compression}.deb`);
    await run('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '--build', pkg, deb]);
    await sameAsDpkg(t, deb, `built-${compression}`);
  });
}

test(`a Debian package from the local cache (${cached ?? `none in ${DEB_CACHE}: skipped`}) packs to the tree dpkg-deb -x gives`, async (t) => {
  if (cached === undefined) {
    t.pass();
    return;
  }
  await sameAsDpkg(t, path.join(DEB_CACHE, cached), 'cached');
});
