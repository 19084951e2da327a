// 0-flist's chunk pipeline, per 512 KiB of a file: key = blake2b-128(plain),
// Snappy raw, XXTEA with `key` (xxtea-c framing), hash = blake2b-128(ciphertext),
// stored in the backend under the raw 16-byte hash. Decoding checks both hashes.
import { compressSync } from 'snappy';
import { inflateChecked } from '../chunk.ts';
import { ChunkError, ChunkIdMismatchError } from '../errors.ts';
import { createBlake2b } from './hash.ts';
import { XxteaError, xxteaDecrypt, xxteaEncrypt } from './xxtea.ts';

export const LEGACY_CHUNK_SIZE = 512 * 1024;

export interface LegacyEncodedChunk {
  hash: Buffer;
  key: Buffer;
  data: Buffer;
}

export interface LegacyChunkCodec {
  encode(plain: Uint8Array): LegacyEncodedChunk;
  /** The plain chunk, or a ChunkError naming the hash. */
  decode(hash: Buffer, key: Buffer, data: Uint8Array): Buffer;
}

export async function createLegacyCodec(): Promise<LegacyChunkCodec> {
  const blake = await createBlake2b(128);
  return {
    encode(plain) {
      const key = blake(plain);
      const data = xxteaEncrypt(compressSync(Buffer.from(plain)), key);
      return { hash: blake(data), key, data };
    },
    decode(hash, key, data) {
      const actual = blake(data);
      if (!actual.equals(hash)) throw new ChunkIdMismatchError(hash, actual);
      let compressed: Buffer;
      try {
        compressed = xxteaDecrypt(data, key);
      } catch (e) {
        if (e instanceof XxteaError) throw new ChunkError(hash, `XXTEA decryption with the key from the flist failed (${e.message})`);
        throw e;
      }
      return inflateChecked(hash, key, compressed, LEGACY_CHUNK_SIZE, blake);
    },
  };
}
