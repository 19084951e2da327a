// SECURE authentication: the server hands out a single-use 16-hex-digit
// nonce; the client proves the password with hex(sha1("<nonce>:<password>")).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SHA1_HEX_LENGTH = 40;

export function newChallenge(): string {
  return randomBytes(8).toString('hex');
}

export function secureHash(nonce: string, password: string): string {
  return createHash('sha1').update(`${nonce}:${password}`).digest('hex');
}

/** Exact comparison of what the client sent with the expected secret. */
export function passwordMatches(given: Buffer, expected: string): boolean {
  const want = Buffer.from(expected);
  return given.length === want.length && timingSafeEqual(given, want);
}
