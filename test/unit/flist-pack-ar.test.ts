import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AR_HEADER_SIZE, ArFormatError, encodeArMember, nextMemberOffset, parseAr, parseArHeader } from '../../flist/sources/ar.ts';
import { AR_MAGIC, compressionOf, isAr, isTarHeader } from '../../flist/sources/sniff.ts';

test('parses an archive written by binutils ar, odd sizes padded', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-ar-'));
  try {
    writeFileSync(path.join(dir, 'debian-binary'), '2.0\n');
    writeFileSync(path.join(dir, 'odd.tar'), 'x'.repeat(333));
    writeFileSync(path.join(dir, 'data.tar.xz'), 'y'.repeat(1000));
    execFileSync('ar', ['rcU', 'a.a', 'debian-binary', 'odd.tar', 'data.tar.xz'], { cwd: dir });
    const members = parseAr(readFileSync(path.join(dir, 'a.a')));
    t.deepEqual(members.map((m) => [m.member.name, m.member.size, m.data.toString()[0]]), [
      ['debian-binary', 4, '2'],
      ['odd.tar', 333, 'x'],
      ['data.tar.xz', 1000, 'y'],
    ]);
    t.is(members[0].member.mode & 0o777, 0o644);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encodeArMember output is read back by binutils ar and by parseAr', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-ar-'));
  try {
    const archive = Buffer.concat([AR_MAGIC, encodeArMember('debian-binary', Buffer.from('2.0\n'), { mtime: 1700000000 }), encodeArMember('data.tar', Buffer.from('abc'))]);
    writeFileSync(path.join(dir, 'b.a'), archive);
    t.is(execFileSync('ar', ['t', 'b.a'], { cwd: dir }).toString(), 'debian-binary\ndata.tar\n');
    t.is(execFileSync('ar', ['p', 'b.a', 'data.tar'], { cwd: dir }).toString(), 'abc');
    const [first, second] = parseAr(archive);
    t.like(first.member, { name: 'debian-binary', mtime: 1700000000, size: 4 });
    t.is(second.data.toString(), 'abc');
    // 8 + (60 + 4) = 72: the second header; 72 + 60 + 3 + 1 pad
    t.is(nextMemberOffset(72, second.member), archive.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a BSD long name ("#1/<len>") is read from the start of the data', (t) => {
  const name = 'data.tar.zst';
  const header = Buffer.from(`#1/${name.length}`.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '644'.padEnd(8) + String(name.length + 5).padEnd(10) + '`\n', 'latin1');
  const [m] = parseAr(Buffer.concat([AR_MAGIC, header, Buffer.from(name), Buffer.from('hello'), Buffer.from('\n')]));
  t.is(m.member.name, name);
  t.is(m.data.toString(), 'hello');
});

test('malformed headers are refused with what is wrong', (t) => {
  const good = encodeArMember('x', Buffer.from('1234')).subarray(0, AR_HEADER_SIZE);
  t.throws(() => parseArHeader(good.subarray(0, 59)), { instanceOf: ArFormatError, message: /59 bytes, expected 60 \(truncated archive\)/ });
  const noFmag = Buffer.from(good);
  noFmag[58] = 0x20;
  t.throws(() => parseArHeader(noFmag), { instanceOf: ArFormatError, message: /terminator/ });
  const badSize = Buffer.from(good);
  badSize.write('12a4      ', 48, 'latin1');
  t.throws(() => parseArHeader(badSize), { instanceOf: ArFormatError, message: /size "12a4" is not a number/ });
  t.throws(() => parseAr(Buffer.concat([AR_MAGIC, encodeArMember('x', Buffer.from('1234')).subarray(0, 62)])), { instanceOf: ArFormatError, message: /truncated archive/ });
  t.throws(() => parseAr(Buffer.from('not an archive')), { instanceOf: ArFormatError, message: /no "!<arch>" magic/ });
  t.throws(() => encodeArMember('a-name-of-16-byt', Buffer.alloc(0)), { instanceOf: ArFormatError });
});

test('sniff: compressions by magic, ar, ustar and v7 tar headers', (t) => {
  t.is(compressionOf(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
  t.is(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0])), 'xz');
  t.is(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  t.is(compressionOf(Buffer.from('BZh9')), 'bzip2');
  t.is(compressionOf(Buffer.from([0x1f])), 'none');
  t.true(isAr(Buffer.from('!<arch>\ndebian-binary')));
  const tarball = execFileSync('tar', ['-c', '--format=v7', '-f', '-', '-C', '/etc', 'hostname']);
  t.true(isTarHeader(tarball.subarray(0, 512)), 'v7 header (no magic), by checksum');
  const ustar = execFileSync('tar', ['-c', '--format=ustar', '-f', '-', '-C', '/etc', 'hostname']);
  t.true(isTarHeader(ustar.subarray(0, 512)));
  const broken = Buffer.from(tarball.subarray(0, 512));
  broken[0] ^= 1;
  t.false(isTarHeader(broken), 'a v7 header with a wrong checksum');
  t.false(isTarHeader(Buffer.alloc(512)));
  t.false(isTarHeader(tarball.subarray(0, 100)));
});
