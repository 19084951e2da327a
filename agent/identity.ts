// The node's identity: an ed25519 key made on first boot and kept on every
// pool (so any one surviving disk carries it to the next boot), and the node
// id derived from its public key (lib/signed-report.ts: base58 of the key).
// A node without a pool keeps a key in memory only and says so in its
// reports (`diskless`), so the server does not record a new permanent
// identity at every boot of a diskless machine.
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../lib/durable-file.ts';
import { nodeIdOf, privateKeyFromSeed, rawPublicKey, seedOf } from '../lib/signed-report.ts';

export const IDENTITY_FILE = '.zeroboot-identity';

export interface Identity {
  nodeId: string;
  privateKey: KeyObject;
  publicKey: Buffer;
  /** No pool holds the key: it dies with this boot. */
  diskless: boolean;
}

export interface IdentityResult {
  identity: Identity;
  /** `disk` when read from a pool, `new` when made now and stored, `memory` when diskless. */
  source: 'disk' | 'new' | 'memory';
  /** Pools the key was written to now (those that lacked it). */
  writtenTo: string[];
  /** Pools holding a different key than the one kept (left as they are, for an operator to look at). */
  conflicts: string[];
}

export class IdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}

function identityOf(privateKey: KeyObject, diskless: boolean): Identity {
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { nodeId: nodeIdOf(publicKey), privateKey, publicKey, diskless };
}

async function readSeed(pool: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(join(pool, IDENTITY_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const doc = JSON.parse(text) as { format?: number; seed?: string };
    const seed = Buffer.from(doc.seed ?? '', 'base64');
    if (doc.format === 1 && seed.length === 32) return seed;
  } catch {
    // falls through to the error below
  }
  throw new IdentityError(`${join(pool, IDENTITY_FILE)} is not a zeroboot identity file; move it away to let the node use the key of its other pools`);
}

async function writeSeed(pool: string, seed: Buffer): Promise<void> {
  await writeFileDurably(join(pool, IDENTITY_FILE), JSON.stringify({ format: 1, seed: seed.toString('base64') }) + '\n', 0o600);
}

/**
 * The identity kept on the pools (mount points), made and stored on all of
 * them when none has one. When pools disagree, the key of the first pool in
 * sorted order wins (stable across boots) and the others are reported.
 * `held`: the key this boot has used so far from memory (its pools were
 * made after its first report); stored when no pool holds one, so the
 * node id the server already saw stays.
 */
export async function loadOrCreateIdentity(pools: string[], held?: Identity): Promise<IdentityResult> {
  if (pools.length === 0) {
    return { identity: held ?? identityOf(generateKeyPairSync('ed25519').privateKey, true), source: 'memory', writtenTo: [], conflicts: [] };
  }
  const sorted = [...pools].sort();
  const seeds = await Promise.all(sorted.map(readSeed));
  const kept = seeds.find((s) => s !== undefined);
  const seed = kept ?? seedOf(held?.privateKey ?? generateKeyPairSync('ed25519').privateKey);
  const writtenTo: string[] = [];
  const conflicts: string[] = [];
  for (const [i, pool] of sorted.entries()) {
    if (seeds[i] === undefined) {
      await writeSeed(pool, seed);
      writtenTo.push(pool);
    } else if (!seeds[i]!.equals(seed)) conflicts.push(pool);
  }
  return { identity: identityOf(privateKeyFromSeed(seed), false), source: kept ? 'disk' : 'new', writtenTo, conflicts };
}
