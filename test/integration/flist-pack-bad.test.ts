import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeArMember } from '../../flist/sources/ar.ts';
import { AR_MAGIC } from '../../flist/sources/sniff.ts';
import { run, zeroboot } from '../helpers/flist-pack.ts';

let dir: string;
let tarball: string;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-flist-pack-bad-'));
  const src = path.join(dir, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'a'), randomBytes(2_000_000));
  await writeFile(path.join(src, 'b'), randomBytes(700_000));
  tarball = path.join(dir, 'good.tar');
  await run('tar', ['--sort=name', '-cf', tarball, '-C', src, '.']);
  await run('gzip', ['-k', tarball]);
  await run('xz', ['-k', tarball]);
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cut(from: string, name: string, bytes: number): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, (await readFile(from)).subarray(0, bytes));
  return p;
}

/** Packs `source`; expects one stderr line matching `message`, a non-zero exit and no .fl (final or partial). */
async function refused(t: import('ava').ExecutionContext, source: string, message: RegExp): Promise<void> {
  const out = path.join(dir, 'out', `${path.basename(source)}.fl`);
  await mkdir(path.dirname(out), { recursive: true });
  const r = await zeroboot(['flist', 'pack', source, '-o', out, '--store', `dir://${path.join(dir, 'store')}`]);
  t.not(r.code, 0);
  t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  t.true(r.stderr.includes(source), `names the file: ${r.stderr}`);
  t.regex(r.stderr, message);
  t.deepEqual((await readdir(path.dirname(out))).filter((f) => f.startsWith(path.basename(source))), [], 'no .fl, final or partial');
}

test('a truncated tar is refused, naming the entry it ends in', async (t) => {
  await refused(t, await cut(tarball, 'cut.tar', 1_500_000), /truncated tar \(the archive ends inside "\.\/a"\)/);
});

test('a truncated tar.gz is refused as truncated gzip data', async (t) => {
  await refused(t, await cut(`${tarball}.gz`, 'cut.tar.gz', 1_800_000), /truncated gzip data/);
});

test('a truncated tar.xz is refused with what xz says', async (t) => {
  await refused(t, await cut(`${tarball}.xz`, 'cut.tar.xz', 1_800_000), /damaged or truncated xz data \(xz -dc: Unexpected end of input\)/);
});

test('an unknown format is refused, saying what the file starts with', async (t) => {
  await refused(t, await cut('/bin/sh', 'program', 4096), /unknown format \(starts with 7f 45 4c 46/);
  const empty = path.join(dir, 'empty');
  await writeFile(empty, '');
  await refused(t, empty, /an empty file/);
});

test('gzip data that is not a tar is refused', async (t) => {
  const p = path.join(dir, 'text.gz');
  await writeFile(p, 'just text\n'.repeat(1000));
  await run('gzip', ['-f', p]);
  await refused(t, `${p}.gz`, /not a tar archive, or a damaged one/);
});

test('a .deb without data.tar is refused, listing its members', async (t) => {
  const p = path.join(dir, 'no-data.deb');
  await writeFile(p, Buffer.concat([AR_MAGIC, encodeArMember('debian-binary', Buffer.from('2.0\n')), encodeArMember('control.tar.gz', randomBytes(33))]));
  await refused(t, p, /a \.deb without a data\.tar member \(members: debian-binary, control\.tar\.gz\)/);
});

test('a .deb cut inside its data.tar member is refused as truncated', async (t) => {
  const p = path.join(dir, 'cut.deb');
  const member = encodeArMember('data.tar.xz', await readFile(`${tarball}.xz`));
  await writeFile(p, Buffer.concat([AR_MAGIC, encodeArMember('debian-binary', Buffer.from('2.0\n')), member]).subarray(0, 100_000));
  await refused(t, p, /truncated \.deb: member "data\.tar\.xz" has \d+ bytes, the file ends \d+ bytes short/);
});

test('an entry leaving the root is refused, naming it; nothing is written', async (t) => {
  const src = path.join(dir, 'evil');
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'f'), 'x');
  const p = path.join(dir, 'evil.tar');
  // -P keeps the "../" that the transform puts in front; a harmless entry first
  await run('tar', ['-cf', p, '-C', src, 'f']);
  await run('tar', ['-P', '--transform', 's,^,sub/../../,', '-rf', p, '-C', src, 'f']);
  await refused(t, p, /"sub\/\.\.\/\.\.\/f": leaves the root/);
});

test('a hard link to a name not earlier in the archive is refused', async (t) => {
  const src = path.join(dir, 'links');
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'f'), 'x');
  await run('ln', [path.join(src, 'f'), path.join(src, 'g')]);
  const whole = path.join(dir, 'links-whole.tar');
  await run('tar', ['--sort=name', '-cf', whole, '-C', src, 'f', 'g']);
  // drop the first entry (header + 1 data block): g is now a link to nothing
  const p = path.join(dir, 'dangling-link.tar');
  await writeFile(p, (await readFile(whole)).subarray(1024));
  await refused(t, p, /"g": hard link to "f", which is not earlier in the archive/);
});
