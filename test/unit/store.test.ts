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

test('directory mounts: size, ranges, streams', async (t) => {
  const store = new MountedStore([{ prefix: 'images', dir }]);
  const e = await store.open('images/zos/vmlinuz');
  t.is(e.size, 10);
  t.is((await e.read(3, 4)).toString(), '3456');
  t.is((await e.read(8, 100)).toString(), '89');
  t.is((await e.read(10, 5)).length, 0);
  const chunks: Buffer[] = [];
  for await (const c of e.stream(2, 4)) chunks.push(c as Buffer);
  t.is(Buffer.concat(chunks).toString(), '234');
  await e.close();
});

test('memory mounts and longest prefix first', async (t) => {
  const store = new MountedStore([
    { prefix: '', dir },
    { prefix: 'zos', files: { vmlinuz: Buffer.from('mem') } },
  ]);
  t.is((await (await store.open('zos/vmlinuz')).read(0, 10)).toString(), 'mem');
  await t.throwsAsync(store.open('zos/other'), { instanceOf: StoreNotFoundError });
});

test('a symlink that leads outside the mount is refused', async (t) => {
  const store = new MountedStore([{ prefix: '', dir }]);
  await t.throwsAsync(store.open('escape'), { instanceOf: StorePathError });
  await t.throwsAsync(store.open('zos'), { instanceOf: StoreNotFoundError });
  await t.throwsAsync(store.open('nope'), { instanceOf: StoreNotFoundError });
});
