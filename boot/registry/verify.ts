// Verifying a node's signed report (pure: the registry's view and the
// clock come in, a verdict goes out; nothing is changed here).
//
// Trust on first use: the first valid report naming a MAC binds that MAC to
// the node id (= its public key). From then on, a report for that MAC signed
// by another key is refused, until an operator forgets the node. A diskless
// node keeps its key in memory only, so its binding is provisional: a new
// key for the same MAC replaces it (and is not written to disk), while a key
// kept on disks is never replaced by one that is not.
import { nodeIdOf, SIGNING_DOMAIN, signatureValid, type SignedEnvelope } from '../../lib/signed-report.ts';
import { normalizeMac } from '../../lib/mac.ts';
import type { NonceMemory } from './nonces.ts';

export const DEFAULT_WINDOW_MS = 5 * 60_000;

export interface Binding {
  nodeId: string;
  diskless: boolean;
}

export interface RegistryView {
  /** Who a MAC is bound to, if anyone. */
  bindingOf(mac: string): Binding | undefined;
}

export type RejectCode = 'malformed' | 'bad-signature' | 'node-id-mismatch' | 'stale' | 'replayed' | 'mac-bound-to-another-key' | 'unknown-node';

export type Verdict =
  | { ok: true; nodeId: string; mac: string; diskless: boolean; timestamp: number; nonce: string; payload: Record<string, unknown>; publicKey: string; firstContact: boolean; replaces?: string }
  | { ok: false; code: RejectCode; reason: string };

type Refusal = { ok: false; code: RejectCode; reason: string };

const reject = (code: RejectCode, reason: string): Refusal => ({ ok: false, code, reason });

/** The refusal of a report from a new key for a MAC bound to a node with disks. */
export const macBound = (mac: string, nodeId: string): Refusal =>
  reject('mac-bound-to-another-key', `MAC ${mac} belongs to node ${nodeId}; a report from another key is refused (forget that node on the server to re-register)`);

function isEnvelope(v: unknown): v is SignedEnvelope {
  const e = v as SignedEnvelope;
  return typeof e === 'object' && e !== null && typeof e.payload === 'object' && e.payload !== null && !Array.isArray(e.payload) && typeof e.publicKey === 'string' && typeof e.signature === 'string';
}

/** The envelope's shape and key, before anything costs a signature check. */
function envelopeKey(body: unknown): Refusal | { env: SignedEnvelope; key: Buffer } {
  if (!isEnvelope(body)) return reject('malformed', 'expected {payload, publicKey, signature}');
  const key = Buffer.from(body.publicKey, 'base64');
  if (key.length !== 32 || key.toString('base64') !== body.publicKey) return reject('malformed', 'publicKey must be the base64 of a 32-byte ed25519 key');
  return { env: body, key };
}

const hasStamp = (p: Record<string, unknown>): p is Record<string, unknown> & { nodeId: string; timestamp: number; nonce: string } =>
  typeof p.nodeId === 'string' && typeof p.timestamp === 'number' && typeof p.nonce === 'string' && /^[0-9a-f]{16,64}$/.test(p.nonce);

/** Signature in `domain`, node id of the key, inside the window, nonce not seen: undefined when all hold. */
function signedAndFresh(env: SignedEnvelope, key: Buffer, p: { nodeId: string; timestamp: number; nonce: string }, domain: string, nonces: NonceMemory, now: number, windowMs: number): Refusal | undefined {
  if (!signatureValid(env, domain)) return reject('bad-signature', 'the signature does not match the payload and key');
  if (p.nodeId !== nodeIdOf(key)) return reject('node-id-mismatch', `nodeId ${p.nodeId.slice(0, 60)} is not the id of the signing key`);
  if (Math.abs(now - p.timestamp) > windowMs) return reject('stale', `timestamp ${p.timestamp} is ${Math.round((now - p.timestamp) / 1000)} s from the server clock (window ±${windowMs / 1000} s)`);
  const seen = nonces.check(p.nodeId, p.nonce, p.timestamp);
  if (seen === 'replayed') return reject('replayed', 'this nonce was already used by this node');
  if (seen === 'too-old') return reject('stale', 'the message is older than the replay memory reaches');
  return undefined;
}

export function verifyReport(body: unknown, view: RegistryView, nonces: NonceMemory, now: number, windowMs = DEFAULT_WINDOW_MS): Verdict {
  const checked = envelopeKey(body);
  if ('ok' in checked) return checked;
  const { env, key } = checked;
  const p = env.payload;
  const mac = typeof p.mac === 'string' ? normalizeMac(p.mac) : undefined;
  if (!hasStamp(p) || !mac || typeof p.diskless !== 'boolean') {
    return reject('malformed', 'the payload needs nodeId, mac, diskless, timestamp (ms) and nonce (16 to 64 hex digits)');
  }
  const refused = signedAndFresh(env, key, p, SIGNING_DOMAIN, nonces, now, windowMs);
  if (refused) return refused;
  const bound = view.bindingOf(mac);
  let replaces: string | undefined;
  if (bound && bound.nodeId !== p.nodeId) {
    if (!bound.diskless) return macBound(mac, bound.nodeId);
    replaces = bound.nodeId;
  }
  return { ok: true, nodeId: p.nodeId, mac, diskless: p.diskless, timestamp: p.timestamp, nonce: p.nonce, payload: p, publicKey: env.publicKey, firstContact: !bound || replaces !== undefined, ...(replaces ? { replaces } : {}) };
}

export type RequestVerdict = { ok: true; nodeId: string; timestamp: number; nonce: string; payload: Record<string, unknown> } | Refusal;

/**
 * A signed request from a registered node (a poll for its tasks, a task's
 * result): the payload signed in `domain` by the key the node registered
 * with, inside the window, with a nonce not seen. A key that never sent an
 * accepted report is refused, so a stranger cannot poll at all.
 */
export function verifyNodeRequest(body: unknown, domain: string, keyOf: (nodeId: string) => string | undefined, nonces: NonceMemory, now: number, windowMs = DEFAULT_WINDOW_MS): RequestVerdict {
  const checked = envelopeKey(body);
  if ('ok' in checked) return checked;
  const { env, key } = checked;
  const p = env.payload;
  if (!hasStamp(p)) return reject('malformed', 'the payload needs nodeId, timestamp (ms) and nonce (16 to 64 hex digits)');
  const registered = keyOf(p.nodeId);
  if (registered === undefined) return reject('unknown-node', `node ${p.nodeId.slice(0, 60)} has not reported to this server; send a report first`);
  const refused = signedAndFresh(env, key, p, domain, nonces, now, windowMs);
  if (refused) return refused;
  // The id is the key's, and the registry keys nodes by id: the same key, unless the registry changed its mind.
  if (registered !== env.publicKey) return reject('unknown-node', `node ${p.nodeId} is registered with another key`);
  return { ok: true, nodeId: p.nodeId, timestamp: p.timestamp, nonce: p.nonce, payload: p };
}
