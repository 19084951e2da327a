// The pieces of the legacy .flist reader, each against an independent
// reference: XXTEA against the xxtea libraries' published vector and against
// chunks the reference zflist wrote; BLAKE2b-128/64 against python3's
// hashlib; the Cap'n Proto reader against messages built here by hand (far
// pointers, composite lists, hostile pointers) and against zflist's own Dirs.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CapnpError, CapnpMessage } from '../../flist/legacy/capnp.ts';
import { createLegacyCodec } from '../../flist/legacy/chunk.ts';
import { createBlake2b, dirKey } from '../../flist/legacy/hash.ts';
import { decodeAci, decodeDir } from '../../flist/legacy/schema.ts';
import { XxteaError, xxteaDecrypt, xxteaEncrypt } from '../../flist/legacy/xxtea.ts';
import { ChunkError, ChunkIdMismatchError, ChunkKeyMismatchError } from '../../flist/errors.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/legacy-flist');

test('XXTEA: the published xxtea-c vector ("Hello World! 你好，中国！", key "1234567890" zero-padded)', (t) => {
  const key = Buffer.alloc(16);
  key.write('1234567890');
  const plain = Buffer.from('Hello World! 你好，中国！');
  const cipher = xxteaEncrypt(plain, key);
  t.is(cipher.toString('base64'), 'QncB1C0rHQoZ1eRiPM4dsZtRi9pNrp7sqvX76cFXvrrIHXL6');
  t.deepEqual(xxteaDecrypt(cipher, key), plain);
});

test('XXTEA: round trips for every length 1..40 and a whole chunk; the length word is appended', (t) => {
  const key = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  for (let n = 1; n <= 40; n++) {
    const plain = Buffer.alloc(n, n);
    const c = xxteaEncrypt(plain, key);
    t.is(c.length, Math.ceil(n / 4) * 4 + 4, `length ${n}`);
    t.deepEqual(xxteaDecrypt(c, key), plain);
  }
  const big = Buffer.alloc(512 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  t.true(xxteaDecrypt(xxteaEncrypt(big, key), key).equals(big));
});

test('XXTEA: a wrong key or a cut ciphertext is refused, not returned as garbage', (t) => {
  const key = Buffer.alloc(16, 7);
  const c = xxteaEncrypt(Buffer.from('some compressed data here'), key);
  t.throws(() => xxteaDecrypt(c, Buffer.alloc(16, 8)), { instanceOf: XxteaError, message: /wrong key or damaged data/ });
  t.throws(() => xxteaDecrypt(c.subarray(0, c.length - 3), key), { instanceOf: XxteaError, message: /whole number of 32-bit words/ });
  t.throws(() => xxteaDecrypt(c, Buffer.alloc(15)), { instanceOf: XxteaError, message: /15 bytes/ });
});

test('BLAKE2b-128 and -64 agree with python3 hashlib; directory keys drop leading and trailing slashes', async (t) => {
  const b128 = await createBlake2b(128);
  const b64 = await createBlake2b(64);
  const py = (bits: number, s: string) =>
    execFileSync('python3', ['-c', `import hashlib,sys; print(hashlib.blake2b(sys.argv[1].encode(), digest_size=${bits / 8}).hexdigest())`, s]).toString().trim();
  for (const s of ['', 'abc', 'sub/deeper', 'ünïcode/päth']) t.is(b128(s).toString('hex'), py(128, s), s);
  const acl = 'user:root\ngroup:root\nmode:0o755\nuid:0\ngid:0';
  t.is(b64(acl).toString('hex'), py(64, acl));
  t.is(dirKey(b128, ''), 'cae66941d9efbd404e4d88758ea67670');
  t.is(dirKey(b128, '/sub/deeper/'), b128('sub/deeper').toString('hex'));
});

/** Little-endian 64-bit words into a Buffer. */
function words(...ws: bigint[]): Buffer {
  const b = Buffer.alloc(ws.length * 8);
  ws.forEach((w, i) => b.writeBigUInt64LE(BigInt.asUintN(64, w), i * 8));
  return b;
}

function structPtr(offset: number, dataWords: number, ptrs: number): bigint {
  return (BigInt(ptrs) << 48n) | (BigInt(dataWords) << 32n) | (BigInt.asUintN(30, BigInt(offset)) << 2n);
}

function listPtr(offset: number, size: number, count: number): bigint {
  return (BigInt(count) << 35n) | (BigInt(size) << 32n) | (BigInt.asUintN(30, BigInt(offset)) << 2n) | 1n;
}

function farPtr(segment: number, word: number, double = false): bigint {
  return (BigInt(segment) << 32n) | (BigInt(word) << 3n) | (double ? 4n : 0n) | 2n;
}

function message(...segments: Buffer[]): Buffer {
  const table = Buffer.alloc(Math.ceil((4 + 4 * segments.length) / 8) * 8);
  table.writeUInt32LE(segments.length - 1, 0);
  segments.forEach((s, i) => table.writeUInt32LE(s.length / 8, 4 + 4 * i));
  return Buffer.concat([table, ...segments]);
}

test('capnp: a struct with data fields, text, data and a composite list in one segment', (t) => {
  const seg = Buffer.concat([
    words(structPtr(0, 1, 2)), // root -> word 1
    words(0x0000_0007_0000_0102n), // data: u16@0 = 0x0102, u32@4 = 7
    words(listPtr(1, 2, 3)), // ptr0: text "hi\0" at word 4
    words(listPtr(1, 7, 2)), // ptr1: composite list, 2 words after its tag, at word 5
    Buffer.from('hi\0\0\0\0\0\0'),
    words(structPtr(2, 1, 0)), // tag: 2 elements of 1 data word
    words(11n, 22n),
  ]);
  const root = CapnpMessage.parse(message(seg)).root();
  t.is(root.uint16(0), 0x0102);
  t.is(root.uint32(4), 7);
  t.is(root.uint64(8), 0n, 'past the data section reads as the default');
  t.is(root.int64(8, -1n), -1n, 'and a field with default -1 as -1');
  t.is(root.text(0), 'hi');
  t.deepEqual([...root.list(1)!.structs()].map((s) => s.uint64(0)), [11n, 22n]);
  t.is(root.pointer(5), undefined, 'a pointer past the section is null');
});

test('capnp: far pointers, single and double landing pads, across segments', (t) => {
  // segment 0: root is a far pointer to a landing pad in segment 1, word 0
  const seg0 = words(farPtr(1, 0));
  // segment 1: the pad (a struct pointer to the struct right after it), a struct with one pointer
  // whose text lives behind a double-far pointer: pad in segment 2 -> content in segment 3
  const seg1 = words(structPtr(0, 0, 1), farPtr(2, 0, true));
  const seg2 = words(farPtr(3, 0), listPtr(0, 2, 4));
  const seg3 = Buffer.from('far\0\0\0\0\0');
  const root = CapnpMessage.parse(message(seg0, seg1, seg2, seg3)).root();
  t.is(root.text(0), 'far');
});

test('capnp: hostile messages fail with a CapnpError, never a crash or a loop', (t) => {
  const bad: [string, Buffer, RegExp][] = [
    ['too short', Buffer.alloc(4), /at least 8 bytes/],
    ['a segment past the end', Buffer.concat([words(0x0000_0010_0000_0000n), words(0n)]), /runs past the end/],
    ['a pointer outside its segment', message(words(structPtr(5, 1, 0))), /outside segment 0/],
    ['a list running past its segment', message(words(structPtr(0, 0, 1), listPtr(0, 2, 100))), /runs outside segment 0/],
    ['text without NUL', message(Buffer.concat([words(structPtr(0, 0, 1), listPtr(0, 2, 2)), Buffer.from('hi\0\0\0\0\0\0')])), /NUL terminator/],
    ['a far pointer to a missing segment', message(words(farPtr(7, 0))), /segment 7/],
    ['a list pointer where the root struct is', message(words(listPtr(0, 2, 0))), /not a struct/],
    ['a composite list longer than its words', message(words(structPtr(0, 0, 1), listPtr(0, 7, 1), structPtr(9, 1, 0), 0n)), /does not fit/],
  ];
  for (const [what, buf, re] of bad) {
    t.throws(
      () => {
        const r = CapnpMessage.parse(buf).root();
        r.text(0);
        r.list(0)?.struct(0);
      },
      { instanceOf: CapnpError, message: re },
      what,
    );
  }
  // a struct whose pointer points back at the struct itself: every read goes one level deeper
  const self = message(words(structPtr(0, 0, 1), structPtr(-1, 0, 1)));
  t.throws(
    () => {
      let s = CapnpMessage.parse(self).root();
      for (;;) s = s.struct(0)!;
    },
    { instanceOf: CapnpError, message: /deeper than|traversal limit/ },
  );
});

function fixtureDb(): { db: DatabaseSync; done: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-legacy-unit-'));
  execFileSync('tar', ['xzf', path.join(FIXTURES, 'tree.flist'), '-C', dir]);
  const db = new DatabaseSync(path.join(dir, 'flistdb.sqlite3'), { readOnly: true });
  return { db, done: () => (db.close(), rmSync(dir, { recursive: true, force: true })) };
}

test("schema: zflist's root Dir and an ACL decode to the tree it packed", async (t) => {
  const { db, done } = fixtureDb();
  t.teardown(done);
  const get = (k: string) => Buffer.from((db.prepare('SELECT value FROM entries WHERE key = ?').get(k) as { value: Uint8Array }).value);
  const root = decodeDir(get('cae66941d9efbd404e4d88758ea67670'));
  t.deepEqual(root.contents.map((i) => [i.name, i.attributes.kind]), [['sub', 'dir'], ['big.bin', 'file'], ['dangling', 'link'], ['empty', 'file'], ['exact.bin', 'file'], ['hello.txt', 'file']]);
  const big = root.contents[1];
  t.is(big.size, 1222000n);
  t.is(big.mtime, 1614834367);
  t.true(big.attributes.kind === 'file' && big.attributes.blocks.length === 3 && big.attributes.blocks.every((b) => b.hash.length === 16 && b.key.length === 16));
  const sub = root.contents[0];
  t.true(sub.attributes.kind === 'dir' && sub.attributes.key === (await createBlake2b(128))('sub').toString('hex'));
  const hello = root.contents[5];
  t.like(decodeAci(get(hello.aclkey)), { uname: '1001', gname: '1002', mode: 0o640, uid: 1001n, gid: 1002n });
  t.like(decodeAci(get('d7683de000c13689')), { uname: 'root', gname: 'root', mode: 0o755, uid: 0n, gid: 0n });
});

test('chunks: every block zflist wrote decodes, and both hashes are checked', async (t) => {
  const codec = await createLegacyCodec();
  const { db, done } = fixtureDb();
  t.teardown(done);
  const keys = new Map<string, Buffer>();
  for (const row of db.prepare('SELECT value FROM entries').all() as { value: Uint8Array }[]) {
    let dir;
    try {
      dir = decodeDir(Buffer.from(row.value));
    } catch {
      continue;
    }
    for (const i of dir.contents) if (i.attributes.kind === 'file') for (const b of i.attributes.blocks) keys.set(b.hash.toString('hex'), b.key);
  }
  const files = readdirSync(path.join(FIXTURES, 'blocks'));
  t.is(files.length, 7);
  let bytes = 0;
  for (const hex of files) {
    const plain = codec.decode(Buffer.from(hex, 'hex'), keys.get(hex)!, readFileSync(path.join(FIXTURES, 'blocks', hex)));
    bytes += plain.length;
  }
  t.is(bytes, 1222000 + 524288 + 26 + 18 + 5);

  const enc = codec.encode(Buffer.from('plain chunk'));
  t.deepEqual(codec.decode(enc.hash, enc.key, enc.data), Buffer.from('plain chunk'));
  const flipped = Buffer.from(enc.data);
  flipped[3] ^= 1;
  t.throws(() => codec.decode(enc.hash, enc.key, flipped), { instanceOf: ChunkIdMismatchError, message: new RegExp(`chunk ${enc.hash.toString('hex')}: the data hashes to`) });
  const wrongKey = Buffer.from(enc.key);
  wrongKey[0] ^= 1;
  t.throws(() => codec.decode(enc.hash, wrongKey, enc.data), { instanceOf: ChunkError, message: /XXTEA decryption .* failed/ });
  // data that deciphers and inflates, but to something else than the key says
  const other = codec.encode(Buffer.from('other chunk'));
  const reKeyed = xxteaEncrypt(xxteaDecrypt(other.data, other.key), enc.key);
  const blake = await createBlake2b(128);
  t.throws(() => codec.decode(blake(reKeyed), enc.key, reKeyed), { instanceOf: ChunkKeyMismatchError });
});
