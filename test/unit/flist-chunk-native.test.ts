// The native codec (flist/native/chunk_codec.c) against the hash-wasm +
// JavaScript one: the same digests and the same plain bytes, so a node
// without the addon reads what one with it reads.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import snappyjs from 'snappyjs';
import { createCipheriv } from 'node:crypto';
import { CHUNK_SIZE, createChunkCodec } from '../../flist/chunk.ts';
import { loadCodecAddon } from '../../flist/codec-addon.ts';

function addon() {
  const loaded = loadCodecAddon();
  if (!('addon' in loaded)) throw new Error(`build/Release/flistcodec.node is not built (bash scripts/setup.sh): ${loaded.missing}`);
  return loaded.addon;
}

test('BLAKE2b: the RFC 7693 test vector (BLAKE2b-512 of "abc") and BLAKE2b-256 of "abc" (python3 hashlib)', (t) => {
  const a = addon();
  t.is(
    a.hash(Buffer.from('abc'), 64).toString('hex'),
    'ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923',
  );
  t.is(a.hash(Buffer.from('abc')).toString('hex'), 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
  t.throws(() => a.hash(Buffer.from('abc'), 65), { instanceOf: RangeError });
  t.throws(() => a.hash('abc' as unknown as Uint8Array), { instanceOf: TypeError });
});

test('BLAKE2b-256: the addon and hash-wasm agree on random inputs of every block boundary and size', async (t) => {
  const native = await createChunkCodec();
  const wasm = await createChunkCodec({ native: false });
  t.true(native.native);
  t.false(wasm.native);
  const sizes = [0, 1, 127, 128, 129, 255, 256, 257, 1023, 1024, 4096, 65536, CHUNK_SIZE, CHUNK_SIZE + 16];
  for (let i = 0; i < 200; i++) sizes.push(Math.floor(Math.random() * (CHUNK_SIZE + 1)));
  for (const n of sizes) {
    const data = randomBytes(n);
    // an unaligned view inside a larger buffer, as chunks read from files are
    const view = Buffer.concat([Buffer.alloc(3), data]).subarray(3);
    if (!native.hash(view).equals(wasm.hash(data))) return t.fail(`digests differ for ${n} bytes`);
  }
  t.pass();
});

test('decode: what one codec encodes, both decode to the same bytes (random, text, zeros, a binary; every size class)', async (t) => {
  const native = await createChunkCodec();
  const js = await createChunkCodec({ native: false });
  const text = readFileSync('/etc/services');
  const bin = readFileSync('/usr/bin/bash');
  const plains = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(CHUNK_SIZE), randomBytes(CHUNK_SIZE), bin.subarray(0, CHUNK_SIZE), Buffer.alloc(CHUNK_SIZE, text)];
  for (let i = 0; i < 40; i++) {
    const n = Math.floor(Math.random() * CHUNK_SIZE);
    const start = Math.floor(Math.random() * Math.max(1, bin.length - n));
    plains.push(i % 2 === 0 ? bin.subarray(start, start + n) : Buffer.concat([randomBytes(n >> 3), Buffer.alloc(n - (n >> 3), text)]));
  }
  const scratch = Buffer.allocUnsafe(CHUNK_SIZE);
  for (const plain of plains) {
    const c = js.encode(plain);
    t.deepEqual(native.encode(plain), c, 'the same chunk whichever hashes');
    const viaJs = js.decode(c.id, c.key, c.data);
    const viaNative = native.decode(c.id, c.key, c.data);
    if (!native.decodeTo(c.id, c.key, c.data, scratch, false).equals(plain)) return t.fail(`a ${plain.length}-byte chunk decodes differently without the key check`);
    const viaScratch = native.decodeTo(c.id, c.key, c.data, scratch);
    if (!viaJs.equals(plain) || !viaNative.equals(plain) || !viaScratch.equals(plain)) return t.fail(`a ${plain.length}-byte chunk decodes differently`);
    t.is(viaScratch.buffer, scratch.buffer, 'decodeTo writes into the scratch buffer');
  }
});

test('decode: Snappy from another encoder (snappyjs) decodes natively, long overlapping copies included', async (t) => {
  const native = await createChunkCodec();
  const seal = (plain: Buffer) => {
    const key = native.hash(plain);
    const cipher = createCipheriv('aes-256-gcm', key, key.subarray(0, 12));
    const data = Buffer.concat([cipher.update(snappyjs.compress(plain)), cipher.final(), cipher.getAuthTag()]);
    return { id: native.hash(data), key, data };
  };
  const plains = [Buffer.alloc(CHUNK_SIZE, 'ab'), Buffer.alloc(300000, 'abcdefg'), readFileSync('/usr/bin/bash').subarray(100000, 100000 + CHUNK_SIZE), Buffer.concat([randomBytes(70000), Buffer.alloc(70000, 7)])];
  for (const plain of plains) {
    const c = seal(plain);
    t.true(native.decode(c.id, c.key, c.data).equals(plain));
  }
});
