// The signed envelope a node sends its reports in, shared by the agent
// (signs) and the server's registry (verifies). The payload is signed as
// canonical JSON (keys sorted at every depth, no blanks), after a domain
// prefix so a signature over a report can never pass for one over anything
// else. Keys are raw 32-byte ed25519 keys; a node's id is the base58 of its
// public key (as zos v2 named nodes), so the id cannot be claimed without
// the key.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const SIGNING_DOMAIN = 'zeroboot-node-report-v1\n';
/** A node's long poll for its tasks, and the result of one task: each its own domain, so no signed message passes for another kind. */
export const POLL_DOMAIN = 'zeroboot-node-poll-v1\n';
export const RESULT_DOMAIN = 'zeroboot-node-task-result-v1\n';

export interface SignedEnvelope {
  payload: Record<string, unknown>;
  /** base64 of the raw 32-byte ed25519 public key */
  publicKey: string;
  /** base64 of the 64-byte ed25519 signature over SIGNING_DOMAIN + canonicalJson(payload) */
  signature: string;
}

export class CanonicalJsonError extends Error {}

/** JSON with object keys sorted at every depth and no whitespace; refuses what JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CanonicalJsonError(`a report cannot hold the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value as object).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  throw new CanonicalJsonError(`a report cannot hold a ${typeof value}`);
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Base58 (the Bitcoin alphabet), leading zero bytes as leading '1's. */
export function base58(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = `1${out}`;
  }
  return out;
}

export function nodeIdOf(rawPublicKey: Buffer): string {
  return base58(rawPublicKey);
}

export function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
}

/** The private key of a 32-byte ed25519 seed. */
// PKCS#8 wrapping of a raw ed25519 seed (RFC 8410): this fixed prefix, then the 32 bytes.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function privateKeyFromSeed(seed: Buffer): KeyObject {
  if (seed.length !== 32) throw new Error(`an ed25519 seed is 32 bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** The 32-byte seed of an ed25519 private key. */
export function seedOf(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
}

function signedBytes(payload: Record<string, unknown>, domain: string): Buffer {
  return Buffer.from(domain + canonicalJson(payload));
}

export function signPayload(payload: Record<string, unknown>, privateKey: KeyObject, domain = SIGNING_DOMAIN): SignedEnvelope {
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { payload, publicKey: publicKey.toString('base64'), signature: sign(null, signedBytes(payload, domain), privateKey).toString('base64') };
}

/** Whether the signature is the public key's over the payload in `domain` (shape checked by the caller). */
export function signatureValid(env: SignedEnvelope, domain = SIGNING_DOMAIN): boolean {
  try {
    return verify(null, signedBytes(env.payload, domain), publicKeyFromRaw(Buffer.from(env.publicKey, 'base64')), Buffer.from(env.signature, 'base64'));
  } catch {
    return false;
  }
}

/** Where a node POSTs its signed reports, on the server's node-facing HTTP port. */
export const REPORT_PATH = '/api/node/report';
/** Where a node long-polls for its tasks (namespace provisioning), and where it posts a task's result. */
export const TASKS_PATH = '/api/node/tasks';
export const TASK_RESULT_PATH = '/api/node/task-result';
