// The optional native half of the chunk pipeline (flist/native/chunk_codec.c,
// built by `bash scripts/setup.sh` into build/Release/flistcodec.node). The
// node image and a checkout without a compiler may lack it: flist/chunk.ts
// then hashes with hash-wasm and decodes in JavaScript, with the same results.
import { createRequire } from 'node:module';

/** Why decode() refused a chunk (the numbers of chunk_codec.c). */
export const NativeFailure = { idMismatch: 1, decrypt: 2, badPreamble: 3, tooLarge: 4, corrupt: 5, keyMismatch: 6 } as const;

export interface CodecAddon {
  /** BLAKE2b with a `length`-byte digest (1..64, default 32). */
  hash(data: Uint8Array, length?: number): Buffer;
  /** The plain length written at the start of `out`, or why not (`length`: Snappy's announced length, when known); checkKey false skips the plain bytes' hash. */
  decode(id: Uint8Array, key: Uint8Array, data: Uint8Array, out: Uint8Array, checkKey?: boolean): number | { failure: number; length: number };
}

/** The addon, or why it is not there (one line). */
export function loadCodecAddon(file = '../build/Release/flistcodec.node'): { addon: CodecAddon } | { missing: string } {
  try {
    return { addon: createRequire(import.meta.url)(file) as CodecAddon };
  } catch (e) {
    return { missing: (e as Error).message.split('\n')[0]! };
  }
}
