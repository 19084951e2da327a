// The BLAKE2b sizes 0-flist uses: 128 bits for directory keys and chunks,
// 64 bits for ACL keys (hash-wasm, as the .fl pipeline; Node's crypto has
// only the 512-bit variant).
import { createBLAKE2b } from 'hash-wasm';

export type Hash = (data: Uint8Array | string) => Buffer;

/** A synchronous hash of `bits`; async only because the WebAssembly instance is created once. */
export async function createBlake2b(bits: 64 | 128): Promise<Hash> {
  const h = await createBLAKE2b(bits);
  return (data) => {
    h.init();
    h.update(data);
    return Buffer.from(h.digest('binary'));
  };
}

/** The entries key of a directory: hex blake2b-128 of its path relative to the root, no leading or trailing slash. */
export function dirKey(blake128: Hash, path: string): string {
  return blake128(path.split('/').filter((n) => n !== '').join('/')).toString('hex');
}
