// The rfs chunk pipeline, one 512 KiB piece of a file at a time:
//   key = blake2b-256(plain); Snappy raw; AES-256-GCM with `key`, nonce
//   key[0..12], 16-byte tag appended; id = blake2b-256(ciphertext).
// Convergent: the same plain data gives the same id, so stores dedupe. The
// reverse checks both hashes; unpack may skip the second (checkKey false):
// the id check pins the stored bytes to the .fl, and decrypting them with
// the .fl's key (GCM's tag checked) then yields exactly the plain bytes the
// packer encrypted, so hashing them again (a 512 KiB BLAKE2b, 40% of the
// decode's CPU) only re-checks the packer's key choice and our Snappy
// decoder, which `verify` still does. It knows nothing about stores.
// Libraries (chosen by bench/flist-libs.ts, figures in docs/flist.md):
// snappy, which wraps the Rust `snap` crate that rfs uses too, so the
// compressed bytes, hence the ids, are rfs's; BLAKE2b and the whole decode
// from the native addon (flist/codec-addon.ts) when it is built, else
// hash-wasm and JavaScript (same results, tested).
import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto';
// imported statically although only the fallback uses it: the node image
// carries the npm packages of static imports (image/node-runtime.ts), and a
// node has no addon, so the fallback is its path
import { createBLAKE2b } from 'hash-wasm';
import { compressSync, uncompressSync } from 'snappy';
import { loadCodecAddon, NativeFailure, type CodecAddon } from './codec-addon.ts';
import { ChunkDecompressError, ChunkDecryptError, ChunkError, ChunkIdMismatchError, ChunkKeyMismatchError, ChunkSizeError, FlistError } from './errors.ts';

export const CHUNK_SIZE = 512 * 1024;
const HASH_LENGTH = 32;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;

export interface EncodedChunk {
  /** blake2b-256 of `data`: the name in the chunk stores. */
  id: Buffer;
  /** blake2b-256 of the plain chunk: the AES key, kept in the flist. */
  key: Buffer;
  /** What the stores hold: AES-256-GCM(snappy(plain)) || tag. */
  data: Buffer;
}

/** One pipeline instance; its hash state is not shared, so use one per thread. */
export interface ChunkCodec {
  /** true: the native addon's BLAKE2b and decode; false: hash-wasm and JavaScript */
  readonly native: boolean;
  hash(data: Uint8Array): Buffer;
  encode(plain: Uint8Array): EncodedChunk;
  /** Plain data of a chunk fetched by `id`, or a ChunkError naming the id. */
  decode(id: Buffer, key: Buffer, data: Uint8Array): Buffer;
  /**
   * As decode, but the result may be a view of `scratch` (CHUNK_SIZE bytes
   * or more), valid until the next call with it: no fresh memory per chunk.
   * checkKey false skips the plain data's hash check (see above); default true.
   */
  decodeTo(id: Buffer, key: Buffer, data: Uint8Array, scratch: Buffer, checkKey?: boolean): Buffer;
}

export interface ChunkCodecOptions {
  /** false: hash-wasm and JavaScript even when the addon is built (tests compare both); default: the addon when built */
  native?: boolean;
}

/** Length announced by a Snappy raw block's varint preamble, or -1 when it is malformed. */
export function snappyLength(data: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < 5 && i < data.length; i++) {
    n += (data[i] & 0x7f) * 2 ** (7 * i);
    if ((data[i] & 0x80) === 0) return n;
  }
  return -1;
}

/**
 * The plain bytes of a decrypted chunk (both flist formats): Snappy's length
 * preamble is checked against `max` before inflating, so a small chunk cannot
 * make us allocate gigabytes; then `hash` of the result must equal `key`.
 */
export function inflateChecked(id: Buffer, key: Buffer, compressed: Buffer, max: number, hash: (data: Uint8Array) => Buffer, checkKey = true): Buffer {
  const length = snappyLength(compressed);
  if (length < 0) throw new ChunkDecompressError(id, 'bad length preamble');
  if (length > max) throw new ChunkSizeError(id, `decompresses to ${length} bytes, more than the ${max} of a chunk`);
  let plain: Buffer;
  try {
    plain = uncompressSync(compressed) as Buffer;
  } catch (e) {
    throw new ChunkDecompressError(id, (e as Error).message.split('\n')[0]);
  }
  if (!checkKey) return plain;
  const plainHash = hash(plain);
  if (!plainHash.equals(key)) throw new ChunkKeyMismatchError(id, plainHash);
  return plain;
}

function checkLengths(id: Buffer, key: Buffer): void {
  if (id.length !== HASH_LENGTH) throw new ChunkError(id, `the id is ${id.length} bytes, not ${HASH_LENGTH}`);
  if (key.length !== HASH_LENGTH) throw new ChunkError(id, `the key is ${key.length} bytes, not ${HASH_LENGTH}`);
}

/** Creates a codec; async only because the WebAssembly hash instantiates once (without the addon). */
export async function createChunkCodec(options: ChunkCodecOptions = {}): Promise<ChunkCodec> {
  const loaded = options.native === false ? undefined : loadCodecAddon();
  const addon = loaded !== undefined && 'addon' in loaded ? loaded.addon : undefined;
  const hash = addon !== undefined ? (data: Uint8Array) => addon.hash(data) : await wasmHash();

  const encode = (plain: Uint8Array): EncodedChunk => {
    if (plain.length > CHUNK_SIZE) throw new FlistError(`a chunk holds at most ${CHUNK_SIZE} bytes, got ${plain.length}; cut files into 512 KiB pieces`);
    const key = hash(plain);
    // a KeyObject: Node 24 sets one up in half the time of a raw key (10 against 20 us)
    const cipher = createCipheriv('aes-256-gcm', createSecretKey(key), key.subarray(0, NONCE_LENGTH), { authTagLength: TAG_LENGTH });
    const data = Buffer.concat([cipher.update(compressSync(plain)), cipher.final(), cipher.getAuthTag()]);
    return { id: hash(data), key, data };
  };

  if (addon !== undefined) {
    const decodeTo = (id: Buffer, key: Buffer, data: Uint8Array, scratch: Buffer, checkKey = true): Buffer => {
      checkLengths(id, key);
      if (scratch.length < CHUNK_SIZE) throw new FlistError(`decodeTo needs a scratch buffer of ${CHUNK_SIZE} bytes, got ${scratch.length}`);
      const out = scratch.subarray(0, CHUNK_SIZE);
      const r = addon.decode(id, key, data, out, checkKey);
      if (typeof r === 'number') return out.subarray(0, r);
      return nativeFailure(r, id, data, out, hash);
    };
    const own = Buffer.allocUnsafeSlow(CHUNK_SIZE);
    // a copy of the exact size: callers of decode keep the result
    const decode = (id: Buffer, key: Buffer, data: Uint8Array): Buffer => Buffer.from(decodeTo(id, key, data, own));
    return { native: true, hash, encode, decode, decodeTo };
  }

  const decode = (id: Buffer, key: Buffer, data: Uint8Array, checkKey = true): Buffer => {
    checkLengths(id, key);
    const actual = hash(data);
    if (!actual.equals(id)) throw new ChunkIdMismatchError(id, actual);
    if (data.length < TAG_LENGTH) throw new ChunkDecryptError(id);
    const decipher = createDecipheriv('aes-256-gcm', createSecretKey(key), key.subarray(0, NONCE_LENGTH), { authTagLength: TAG_LENGTH });
    decipher.setAuthTag(data.subarray(data.length - TAG_LENGTH));
    let compressed: Buffer;
    try {
      compressed = decipher.update(data.subarray(0, data.length - TAG_LENGTH));
      // GCM is a stream mode: final() only checks the tag and adds no bytes, so no copy to join them
      const rest = decipher.final();
      if (rest.length > 0) compressed = Buffer.concat([compressed, rest]);
    } catch {
      throw new ChunkDecryptError(id);
    }
    return inflateChecked(id, key, compressed, CHUNK_SIZE, hash, checkKey);
  };

  return { native: false, hash, encode, decode: (id, key, data) => decode(id, key, data), decodeTo: (id, key, data, _scratch, checkKey) => decode(id, key, data, checkKey) };
}

/** Only without the addon: instantiating the WebAssembly costs every thread. */
async function wasmHash(): Promise<(data: Uint8Array) => Buffer> {
  const blake = await createBLAKE2b(HASH_LENGTH * 8);
  return (data) => {
    blake.init();
    blake.update(data);
    return Buffer.from(blake.digest('binary'));
  };
}

/** The error the JavaScript decode throws for the same chunk. */
function nativeFailure(r: { failure: number; length: number }, id: Buffer, data: Uint8Array, out: Buffer, hash: (d: Uint8Array) => Buffer): never {
  switch (r.failure) {
    case NativeFailure.idMismatch:
      throw new ChunkIdMismatchError(id, hash(data));
    case NativeFailure.decrypt:
      throw new ChunkDecryptError(id);
    case NativeFailure.badPreamble:
      throw new ChunkDecompressError(id, 'bad length preamble');
    case NativeFailure.tooLarge:
      throw new ChunkSizeError(id, `decompresses to ${r.length} bytes, more than the ${CHUNK_SIZE} of a chunk`);
    case NativeFailure.corrupt:
      throw new ChunkDecompressError(id, 'the Snappy data is malformed or does not match its announced length');
    case NativeFailure.keyMismatch:
      throw new ChunkKeyMismatchError(id, hash(out.subarray(0, r.length)));
    default:
      throw new ChunkError(id, `the native decoder failed with code ${r.failure}`);
  }
}
