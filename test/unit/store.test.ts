import test from 'ava';
import { mkdtemp, writeFile, mkdir, symlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MountedStore, cleanPath, StorePathError, StoreNotFoundError } from '../../boot/store.ts';

let dir: string;
let outside: string;
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-store-'));
  outside = await mkdtemp(path.join(tmpdir(), 'zb-outside-'));
  await mkdir(path.join(dir, 'zos'));
  await writeFile(path.join(dir, 'zos', 'vmlinuz'), Buffer.from('0123456789'));
  await writeFile(path.join(outside, 'secret'), 'secret');
  await symlink(path.join(outside, 'secret'), path.join(dir, 'escape'));
  await symlink(outside, path.join(dir, 'outdir'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

test('cleanPath normalises separators and refuses escapes', (t) => {
  t.is(cleanPath('/zos//vmlinuz'), 'zos/vmlinuz');
  t.is(cleanPath('\\zos\\vmlinuz'), 'zos/vmlinuz');
  t.is(cleanPath('./a/./b'), 'a/b');
  t.throws(() => cleanPath('../etc/passwd'), { instanceOf: StorePathError });
  t.throws(() => cleanPath('a/..\\..\\b'), { instanceOf: StorePathError });
  t.throws(() => cleanPath('a\0b'), { instanceOf: StorePathError });
});

test('directory mounts: size, reads, reads into a buffer', async (t) => {
  const store = new MountedStore([{ prefix: 'images', dir }]);
  const e = await store.open('images/zos/vmlinuz');
  t.is(e.size, 10);
  t.is((await e.read(3, 4)).toString(), '3456');
  t.is((await e.read(8, 100)).toString(), '89');
  t.is((await e.read(10, 5)).length, 0);
  const buf = Buffer.alloc(4);
  t.is(await e.readInto(buf, 2), 4);
  t.is(buf.toString(), '2345');
  t.is(await e.readInto(buf, 8), 2);
  t.is(buf.subarray(0, 2).toString(), '89');
  t.is(await e.readInto(buf, 10), 0);
  await e.close();
});

test('memory mounts and longest prefix first', async (t) => {
  const store = new MountedStore([
    { prefix: '', dir },
    { prefix: 'zos', files: { vmlinuz: Buffer.from('mem') } },
  ]);
  const mem = await store.open('zos/vmlinuz');
  t.is((await mem.read(0, 10)).toString(), 'mem');
  const buf = Buffer.alloc(2);
  t.is(await mem.readInto(buf, 1), 2);
  t.is(buf.toString(), 'em');
  t.is(await mem.readInto(buf, 3), 0);
  await t.throwsAsync(store.open('zos/other'), { instanceOf: StoreNotFoundError });
});

test('a symlink that leads outside the mount is refused', async (t) => {
  const store = new MountedStore([{ prefix: '', dir }]);
  await t.throwsAsync(store.open('escape'), { instanceOf: StorePathError });
  await t.throwsAsync(store.open('zos'), { instanceOf: StoreNotFoundError });
  await t.throwsAsync(store.open('nope'), { instanceOf: StoreNotFoundError });
});

test('followSymlinks: a file link out of the mount is followed (Debian ipxe.efi -> /boot); the image store keeps refusing it', async (t) => {
  const ipxe = new MountedStore([{ prefix: '', dir, followSymlinks: true }]);
  const e = await ipxe.open('escape');
  t.is((await e.read(0, 100)).toString(), 'secret');
  await e.close();
  const images = new MountedStore([{ prefix: 'images', dir }, { prefix: '', dir, followSymlinks: true }]);
  await t.throwsAsync(images.open('images/escape'), { instanceOf: StorePathError });
  const viaIpxe = await images.open('escape');
  t.is((await viaIpxe.read(0, 6)).toString(), 'secret');
  await viaIpxe.close();
});

test('followSymlinks: a directory link out of the mount is still refused', async (t) => {
  const ipxe = new MountedStore([{ prefix: '', dir, followSymlinks: true }]);
  await t.throwsAsync(ipxe.open('outdir/secret'), { instanceOf: StorePathError });
  await t.throwsAsync(ipxe.open('outdir'), { instanceOf: StoreNotFoundError });
  await t.throwsAsync(new MountedStore([{ prefix: '', dir }]).open('outdir/secret'), { instanceOf: StorePathError });
});
