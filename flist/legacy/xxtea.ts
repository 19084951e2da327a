// XXTEA (corrected Block TEA, Wheeler and Needham) in the framing of the
// xxtea-c library that 0-flist uses: the data is zero-padded to whole 32-bit
// little-endian words, its byte length is appended as one more word, and the
// words are enciphered as one block with a 16-byte key (four LE words). So the
// ciphertext is 4-7 bytes longer than the plain text, and the decrypted length
// word must agree with the ciphertext's size. 0-flist passes the raw 16-byte
// BLAKE2b key (xxtea-c's "bkey" entry points: no cut at a zero byte).

export class XxteaError extends Error {
  override name = 'XxteaError';
}

const DELTA = 0x9e3779b9;

function keyWords(key: Uint8Array): Uint32Array {
  if (key.length !== 16) throw new XxteaError(`the key is ${key.length} bytes, XXTEA takes 16`);
  const k = new Uint32Array(4);
  for (let i = 0; i < 4; i++) k[i] = (key[4 * i] | (key[4 * i + 1] << 8) | (key[4 * i + 2] << 16) | (key[4 * i + 3] << 24)) >>> 0;
  return k;
}

// Copies go through byte arrays viewed as 32-bit words: XXTEA's words are
// little-endian, like the hosts Node runs on (checked once below).
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function toWords(data: Uint8Array, words: number): Uint32Array {
  if (!LITTLE_ENDIAN) {
    const v = new Uint32Array(words);
    for (let i = 0; i < data.length; i++) v[i >>> 2] |= data[i] << ((i & 3) << 3);
    return v;
  }
  const bytes = new Uint8Array(words * 4);
  bytes.set(data.subarray(0, Math.min(data.length, bytes.length)));
  return new Uint32Array(bytes.buffer);
}

function toBytes(v: Uint32Array, length: number): Buffer {
  if (!LITTLE_ENDIAN) {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = v[i >>> 2] >>> ((i & 3) << 3);
    return out;
  }
  return Buffer.from(v.buffer, v.byteOffset, length);
}

function mx(sum: number, y: number, z: number, p: number, e: number, k: Uint32Array): number {
  return ((((z >>> 5) ^ (y << 2)) + ((y >>> 3) ^ (z << 4))) ^ ((sum ^ y) + (k[(p & 3) ^ e] ^ z))) >>> 0;
}

function encipher(v: Uint32Array, k: Uint32Array): void {
  const n = v.length - 1;
  let z = v[n];
  let sum = 0;
  for (let q = 6 + Math.floor(52 / (n + 1)); q > 0; q--) {
    sum = (sum + DELTA) >>> 0;
    const e = (sum >>> 2) & 3;
    let y: number;
    for (let p = 0; p < n; p++) {
      y = v[p + 1];
      z = v[p] = (v[p] + mx(sum, y, z, p, e, k)) >>> 0;
    }
    y = v[0];
    z = v[n] = (v[n] + mx(sum, y, z, n, e, k)) >>> 0;
  }
}

function decipher(v: Uint32Array, k: Uint32Array): void {
  const n = v.length - 1;
  const rounds = 6 + Math.floor(52 / (n + 1));
  let sum = Math.imul(rounds, DELTA) >>> 0;
  let y = v[0];
  while (sum !== 0) {
    const e = (sum >>> 2) & 3;
    let z: number;
    for (let p = n; p > 0; p--) {
      z = v[p - 1];
      y = v[p] = (v[p] - mx(sum, y, z, p, e, k)) >>> 0;
    }
    z = v[n];
    y = v[0] = (v[0] - mx(sum, y, z, 0, e, k)) >>> 0;
    sum = (sum - DELTA) >>> 0;
  }
}

/** Enciphers `plain` (not empty) with the length word appended; for tests and fixtures. */
export function xxteaEncrypt(plain: Uint8Array, key: Uint8Array): Buffer {
  if (plain.length === 0) throw new XxteaError('xxtea-c refuses to encrypt empty data');
  const n = Math.ceil(plain.length / 4);
  const v = toWords(plain, n + 1);
  v[n] = plain.length;
  encipher(v, keyWords(key));
  return toBytes(v, v.length * 4);
}

/** Deciphers what xxteaEncrypt (or xxtea-c) wrote; a wrong key or damaged data shows as a length word that does not fit. */
export function xxteaDecrypt(cipher: Uint8Array, key: Uint8Array): Buffer {
  if (cipher.length < 8 || cipher.length % 4 !== 0) throw new XxteaError(`${cipher.length} bytes: XXTEA data is a whole number of 32-bit words, at least two`);
  const v = toWords(cipher, cipher.length / 4);
  decipher(v, keyWords(key));
  const room = cipher.length - 4;
  const length = v[v.length - 1];
  if (length > room || length < room - 3) throw new XxteaError(`the deciphered length word says ${length} bytes, the data holds ${room - 3}-${room}: wrong key or damaged data`);
  return toBytes(v, length);
}
