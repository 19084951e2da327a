// The cpio newc writer against real readers: GNU cpio (list and extract,
// device nodes included) and busybox cpio; plus determinism and path rules.
import test from 'ava';
import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeCpio, normaliseEntries, CpioError } from '../../image/cpio.ts';
import type { CpioEntry } from '../../image/cpio.ts';

const run = promisify(execFile);

// File sizes 0..5 and one odd larger size exercise every padding case.
const ENTRIES: CpioEntry[] = [
  { type: 'file', path: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
  { type: 'dir', path: 'tmp', mode: 0o1777 },
  ...[0, 1, 2, 3, 4, 5].map((n): CpioEntry => ({ type: 'file', path: `pad/f${n}`, data: Buffer.alloc(n, 0x41 + n) })),
  { type: 'file', path: 'lib/modules/x/big.bin', data: Buffer.from(Array.from({ length: 70001 }, (_, i) => (i * 31) & 0xff)) },
  { type: 'file', path: 'bin/su', mode: 0o4755, data: Buffer.from('setuid') },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'symlink', path: 'sbin/init', target: '../init' },
  { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
  { type: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
  { type: 'block', path: 'dev/vda', major: 254, minor: 0, mode: 0o660 },
];

const EXPECTED_NAMES = [
  'bin', 'bin/sh', 'bin/su', 'dev', 'dev/console', 'dev/null', 'dev/vda', 'init',
  'lib', 'lib/modules', 'lib/modules/x', 'lib/modules/x/big.bin',
  'pad', 'pad/f0', 'pad/f1', 'pad/f2', 'pad/f3', 'pad/f4', 'pad/f5', 'sbin', 'sbin/init', 'tmp',
];

async function withArchive(t: { teardown(fn: () => Promise<void>): void }, data: Buffer): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'zb-cpio-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.cpio');
  await writeFile(file, data);
  return { dir, file };
}

function sh(script: string, cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('sh', ['-c', script], { cwd, maxBuffer: 16 * 1024 * 1024 });
}

test('GNU cpio lists every entry in sorted order with modes, owners, sizes and device numbers', async (t) => {
  const { dir } = await withArchive(t, writeCpio(ENTRIES));
  const names = (await sh('cpio -it < a.cpio', dir)).stdout.trim().split('\n');
  t.deepEqual(names, EXPECTED_NAMES);
  const long = (await sh('cpio -itv --numeric-uid-gid < a.cpio', dir)).stdout;
  t.regex(long, /^-rwsr-xr-x +1 0 +0 +6 .* bin\/su$/m);
  t.regex(long, /^lrwxrwxrwx +1 0 +0 +7 .* bin\/sh -> busybox$/m);
  t.regex(long, /^crw------- +1 0 +0 +5, +1 .* dev\/console$/m);
  t.regex(long, /^brw-rw---- +1 0 +0 +254, +0 .* dev\/vda$/m);
  t.regex(long, /^drwxrwxrwt +2 0 +0 +0 .* tmp$/m);
  t.regex(long, /^-rw-r--r-- +1 0 +0 +70001 .* lib\/modules\/x\/big\.bin$/m);
});

test('GNU cpio extracts identical contents, links and device nodes', async (t) => {
  const { dir } = await withArchive(t, writeCpio(ENTRIES));
  const { stderr } = await sh('mkdir out && cd out && cpio -idm --no-absolute-filenames < ../a.cpio', dir);
  t.notRegex(stderr, /error|warning|cannot/i);
  const out = join(dir, 'out');
  for (const e of ENTRIES) {
    const st = await lstat(join(out, e.path));
    if (e.type === 'file') {
      t.deepEqual(await readFile(join(out, e.path)), Buffer.from(e.data), e.path);
      t.is(st.mode & 0o7777, e.mode ?? 0o644, e.path);
    } else if (e.type === 'symlink') t.is(await readlink(join(out, e.path)), e.target);
    else if (e.type === 'char' || e.type === 'block') {
      t.is(e.type === 'char' ? st.isCharacterDevice() : st.isBlockDevice(), true, e.path);
      t.is(Math.floor(st.rdev / 256), e.major, e.path);
      t.is(st.rdev % 256, e.minor, e.path);
    }
  }
  t.is((await lstat(join(out, 'init'))).mtimeMs, 0);
});

test('busybox cpio lists and extracts the archive', async (t) => {
  const { dir } = await withArchive(t, writeCpio(ENTRIES));
  t.deepEqual((await sh('busybox cpio -t < a.cpio', dir)).stdout.trim().split('\n'), EXPECTED_NAMES);
  await sh('mkdir out && cd out && busybox cpio -id < ../a.cpio', dir);
  t.deepEqual(await readFile(join(dir, 'out/lib/modules/x/big.bin')), Buffer.from((ENTRIES.find((e) => e.path.endsWith('big.bin')) as { data: Uint8Array }).data));
  t.is(await readlink(join(dir, 'out/sbin/init')), '../init');
});

test('same entries in any order give the same bytes; header fields are fixed', (t) => {
  const a = writeCpio(ENTRIES);
  const b = writeCpio([...ENTRIES].reverse());
  t.true(a.equals(b));
  t.is(a.length % 4, 0);
  const head = a.subarray(0, 110).toString('ascii');
  t.is(head.slice(0, 6), '070701');
  t.is(head.slice(6, 14), '00000001'); // first inode
  t.is(head.slice(22, 38), '0000000000000000'); // uid, gid
  t.is(head.slice(46, 54), '00000000'); // mtime
  t.true(a.includes(Buffer.from('TRAILER!!!\0')));
  const stamped = writeCpio(ENTRIES, { mtime: 1700000000 });
  t.is(stamped.subarray(46, 54).toString('ascii'), (1700000000).toString(16).padStart(8, '0'));
  t.false(stamped.equals(a));
});

test('GNU cpio shows the fixed mtime from SOURCE_DATE_EPOCH-style stamps', async (t) => {
  const { dir } = await withArchive(t, writeCpio([{ type: 'file', path: 'x', data: Buffer.from('x') }], { mtime: 1700000000 }));
  await sh('mkdir out && cd out && cpio -idm < ../a.cpio', dir);
  t.is((await lstat(join(dir, 'out/x'))).mtimeMs, 1700000000 * 1000);
});

test('missing parents are added; bad paths and conflicts are refused', (t) => {
  t.deepEqual(normaliseEntries([{ type: 'file', path: '/a/b/c', data: Buffer.alloc(0) }]).map((e) => `${e.type}:${e.path}`), ['dir:a', 'dir:a/b', 'file:a/b/c']);
  t.throws(() => writeCpio([{ type: 'dir', path: 'a/../b' }]), { instanceOf: CpioError, message: /plain relative path/ });
  t.throws(() => writeCpio([{ type: 'dir', path: '' }]), { instanceOf: CpioError });
  t.throws(() => writeCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: './a' }]), { instanceOf: CpioError, message: /appears twice/ });
  t.throws(() => writeCpio([{ type: 'file', path: 'a', data: Buffer.alloc(1) }, { type: 'file', path: 'a/b', data: Buffer.alloc(1) }]), { instanceOf: CpioError, message: /is a file/ });
  t.throws(() => writeCpio([{ type: 'file', path: 'a', mode: 0o10000, data: Buffer.alloc(1) }]), { instanceOf: CpioError, message: /permission/ });
  t.throws(() => writeCpio([{ type: 'symlink', path: 'a', target: '' }]), { instanceOf: CpioError, message: /target/ });
});
