import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import snappyjs from 'snappyjs';
import { CHUNK_SIZE, createChunkCodec } from '../../flist/chunk.ts';
import { ChunkDecompressError, ChunkDecryptError, ChunkIdMismatchError, ChunkKeyMismatchError, ChunkSizeError, FlistError } from '../../flist/errors.ts';

// Golden values from python3 (hashlib.blake2b(digest_size=32) and the
// cryptography module's AESGCM), over the Snappy raw block written by hand:
// varint length 11, literal tag (11-1)<<2, the bytes.
const HELLO = {
  plain: Buffer.from('hello flist'),
  compressed: Buffer.from('0b2868656c6c6f20666c697374', 'hex'),
  key: '134c7999f87dda7313641c29681330739e7892fed9f4b204aedcb8fac29d7a10',
  data: '818cfc08b6ef114037f1e9f62d194caf5a2c25bb4d863ce60849dd6224',
  id: '2ecd15f75be1def6351d3308c4ed73b132be75e3e5c3608b74de18e81f26478c',
};

// The independent side: blake2b and AES-GCM in python3, Snappy in snappyjs.
const PY_OPEN = String.raw`
import sys, hashlib
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
idh, keyh, path = sys.argv[1:4]
data = open(path, 'rb').read()
assert hashlib.blake2b(data, digest_size=32).hexdigest() == idh, 'id'
key = bytes.fromhex(keyh)
sys.stdout.write(AESGCM(key).decrypt(key[:12], data, None).hex())
`;
const PY_SEAL = String.raw`
import sys, hashlib
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
plain, comp = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
key = hashlib.blake2b(plain, digest_size=32).digest()
data = AESGCM(key).encrypt(key[:12], comp, None)
print(key.hex(), hashlib.blake2b(data, digest_size=32).hexdigest(), data.hex())
`;
const PY_BLAKE = 'import sys, hashlib; print(hashlib.blake2b(open(sys.argv[1], "rb").read(), digest_size=32).hexdigest())';

function py(script: string, ...args: string[]): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim();
}

/** A realistic 512 KiB chunk: the start of a binary, then text. */
function realChunk(): Buffer {
  const bin = readFileSync('/usr/bin/bash').subarray(0, CHUNK_SIZE / 2);
  const text = Buffer.alloc(CHUNK_SIZE - bin.length, readFileSync('/etc/services'));
  return Buffer.concat([bin, text]);
}

async function withTmp(files: Record<string, Buffer>, fn: (paths: Record<string, string>) => string): Promise<string> {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/flist-chunk-`);
  try {
    const paths: Record<string, string> = {};
    for (const [name, data] of Object.entries(files)) {
      paths[name] = `${dir}/${name}`;
      await writeFile(paths[name], data);
    }
    return fn(paths);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('encode gives the golden key, data and id computed by python3', async (t) => {
  const codec = await createChunkCodec();
  const c = codec.encode(HELLO.plain);
  t.is(c.key.toString('hex'), HELLO.key);
  t.is(c.data.toString('hex'), HELLO.data);
  t.is(c.id.toString('hex'), HELLO.id);
  t.is(codec.hash(Buffer.from('abc')).toString('hex'), 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
  t.deepEqual(codec.decode(Buffer.from(HELLO.id, 'hex'), Buffer.from(HELLO.key, 'hex'), Buffer.from(HELLO.data, 'hex')), HELLO.plain);
});

test('a 512 KiB chunk encoded here opens in python3 + snappyjs', async (t) => {
  const codec = await createChunkCodec();
  const plain = realChunk();
  const c = codec.encode(plain);
  const compressed = await withTmp({ data: c.data, plain }, (p) => {
    t.is(py(PY_BLAKE, p.plain), c.key.toString('hex'));
    return py(PY_OPEN, c.id.toString('hex'), c.key.toString('hex'), p.data);
  });
  t.true(Buffer.from(snappyjs.uncompress(Buffer.from(compressed, 'hex'))).equals(plain));
  t.true(c.data.length < plain.length, 'compressed');
});

test('a 512 KiB chunk sealed by python3 over snappyjs output decodes here', async (t) => {
  const codec = await createChunkCodec();
  const plain = realChunk();
  const comp = Buffer.from(snappyjs.compress(plain));
  const [key, id, data] = (await withTmp({ plain, comp }, (p) => py(PY_SEAL, p.plain, p.comp))).split(' ');
  t.true(codec.decode(Buffer.from(id, 'hex'), Buffer.from(key, 'hex'), Buffer.from(data, 'hex')).equals(plain));
});

test('the same plain data gives the same id (convergent), different data another', async (t) => {
  const codec = await createChunkCodec();
  const a = codec.encode(realChunk());
  const b = codec.encode(realChunk());
  t.deepEqual(a, b);
  t.notDeepEqual(codec.encode(Buffer.from('other')).id, a.id);
});

for (const native of [true, false]) test(`decode refuses, naming the chunk id: wrong data, wrong key, damaged ciphertext, a bomb, bad snappy (${native ? 'native addon' : 'hash-wasm + JavaScript'})`, async (t) => {
  const codec = await createChunkCodec({ native });
  t.is(codec.native, native, native ? 'build/Release/flistcodec.node (bash scripts/setup.sh builds it)' : 'native: false is honoured');
  const id = Buffer.from(HELLO.id, 'hex');
  const key = Buffer.from(HELLO.key, 'hex');
  const data = Buffer.from(HELLO.data, 'hex');

  const flipped = Buffer.from(data);
  flipped[0] ^= 1;
  const e1 = t.throws(() => codec.decode(id, key, flipped), { instanceOf: ChunkIdMismatchError });
  t.true(e1.message.startsWith(`chunk ${HELLO.id}: the data hashes to `));

  // Ciphertext altered but presented under its own id: GCM's tag catches it.
  t.throws(() => codec.decode(codec.hash(flipped), key, flipped), { instanceOf: ChunkDecryptError, message: new RegExp(`^chunk ${codec.hash(flipped).toString('hex')}: AES-256-GCM`) });

  // A key that decrypts (the chunk was sealed with it) but is not the plain's hash.
  const wrongKey = Buffer.alloc(32, 9);
  const seal = (plain: Buffer, k: Buffer) => {
    const cipher = createCipheriv('aes-256-gcm', k, k.subarray(0, 12));
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };
  const lying = seal(HELLO.compressed, wrongKey);
  t.throws(() => codec.decode(codec.hash(lying), wrongKey, lying), { instanceOf: ChunkKeyMismatchError, message: /the plain data hashes to 134c7999/ });
  // unpack skips only that check (checkKey false): the chunk then decodes, while a changed byte is still refused by its id
  const scratch = Buffer.alloc(CHUNK_SIZE);
  t.deepEqual(Buffer.from(codec.decodeTo(codec.hash(lying), wrongKey, lying, scratch, false)), HELLO.plain);
  t.throws(() => codec.decodeTo(codec.hash(lying), wrongKey, lying, scratch), { instanceOf: ChunkKeyMismatchError });
  t.throws(() => codec.decodeTo(id, key, flipped, scratch, false), { instanceOf: ChunkIdMismatchError });
  t.throws(() => codec.decodeTo(codec.hash(flipped), key, flipped, scratch, false), { instanceOf: ChunkDecryptError });

  // Announces 1 GiB: refused before inflating.
  const bomb = seal(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04, 0x00]), wrongKey);
  t.throws(() => codec.decode(codec.hash(bomb), wrongKey, bomb), { instanceOf: ChunkSizeError, message: /decompresses to 1073741824 bytes/ });

  const garbage = seal(Buffer.from([0x05, 0xff, 0xff]), wrongKey);
  t.throws(() => codec.decode(codec.hash(garbage), wrongKey, garbage), { instanceOf: ChunkDecompressError });
  // a copy reaching back before the start of the output
  const backwards = seal(Buffer.from([0x08, 0x00, 0x61, 0x0d, 0x05]), wrongKey);
  t.throws(() => codec.decode(codec.hash(backwards), wrongKey, backwards), { instanceOf: ChunkDecompressError });
  // fewer bytes than the preamble announces
  const short = seal(Buffer.from([0x05, 0x04, 0x61, 0x62]), wrongKey);
  t.throws(() => codec.decode(codec.hash(short), wrongKey, short), { instanceOf: ChunkDecompressError });
  const tiny = Buffer.alloc(10);
  t.throws(() => codec.decode(codec.hash(tiny), key, tiny), { instanceOf: ChunkDecryptError });

  t.throws(() => codec.encode(Buffer.alloc(CHUNK_SIZE + 1)), { instanceOf: FlistError, message: /at most 524288 bytes/ });
});
