import test from 'ava';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, nodeIdOf, rawPublicKey, signPayload, base58 } from '../../lib/signed-report.ts';
import { createPublicKey } from 'node:crypto';
import { NonceMemory } from '../../boot/registry/nonces.ts';
import { verifyReport, type Binding, type RegistryView } from '../../boot/registry/verify.ts';
import { Registry, REGISTRY_FILE, RegistryFileError } from '../../boot/registry/store.ts';
import { handleReport } from '../../boot/registry/handler.ts';

const NOW = 1_780_000_000_000;
const MAC = '52:54:00:00:01:01';
let n = 0;
const nonce = () => (++n).toString(16).padStart(32, '0');

function node(diskless = false) {
  const { privateKey } = generateKeyPairSync('ed25519');
  const nodeId = nodeIdOf(rawPublicKey(createPublicKey(privateKey)));
  return { privateKey, nodeId, report: (o: Record<string, unknown> = {}) => signPayload({ version: 1, nodeId, mac: MAC, diskless, timestamp: NOW, nonce: nonce(), ...o }, privateKey) };
}

const none: RegistryView = { bindingOf: () => undefined };
const check = (body: unknown, view: RegistryView = none, nonces = new NonceMemory(), now = NOW) => verifyReport(body, view, nonces, now);

test('canonical JSON sorts keys at every depth and refuses what JSON cannot carry; base58 keeps leading zeros', (t) => {
  t.is(canonicalJson({ b: [1, { d: 1, c: undefined, a: 'x' }], a: null }), '{"a":null,"b":[1,{"a":"x","d":1}]}');
  t.throws(() => canonicalJson({ x: Number.NaN }));
  t.throws(() => canonicalJson({ x: 1n }));
  t.is(base58(Buffer.from([0, 0, 1])), '112');
  t.is(base58(Buffer.from('hello world')), 'StV1DL6CwTryKyV');
});

test('a valid report is accepted and binds on first contact', (t) => {
  const a = node();
  const v = check(a.report());
  t.true(v.ok);
  t.like(v, { nodeId: a.nodeId, mac: MAC, firstContact: true });
});

test('forged: a changed payload, a signature from another key, a claimed node id that is not the key', (t) => {
  const a = node();
  const b = node();
  const env = a.report();
  t.like(check({ ...env, payload: { ...env.payload, diskless: true } }), { ok: false, code: 'bad-signature' });
  t.like(check({ ...env, signature: b.report().signature }), { ok: false, code: 'bad-signature' });
  // b signs a payload that claims a's id: the signature is fine, the id is not b's.
  t.like(check(signPayload({ ...env.payload, nonce: nonce() }, b.privateKey)), { ok: false, code: 'node-id-mismatch' });
  t.like(check({ payload: env.payload, publicKey: 'AAAA', signature: env.signature }), { ok: false, code: 'malformed' });
  t.like(check('nope'), { ok: false, code: 'malformed' });
  t.like(check(a.report({ nonce: 'xyz' })), { ok: false, code: 'malformed' });
});

test('a MAC bound to one key refuses another, unless the bound node was diskless', (t) => {
  const a = node();
  const b = node();
  const boundTo = (binding: Binding) => ({ bindingOf: (mac: string) => (mac === MAC ? binding : undefined) });
  t.like(check(b.report(), boundTo({ nodeId: a.nodeId, diskless: false })), { ok: false, code: 'mac-bound-to-another-key' });
  t.like(check(b.report(), boundTo({ nodeId: a.nodeId, diskless: true })), { ok: true, replaces: a.nodeId, firstContact: true });
  t.like(check(a.report(), boundTo({ nodeId: a.nodeId, diskless: false })), { ok: true, firstContact: false });
});

test('stale and future timestamps are refused; a replayed nonce is refused', (t) => {
  const a = node();
  t.like(check(a.report({ timestamp: NOW - 6 * 60_000 })), { ok: false, code: 'stale' });
  t.like(check(a.report({ timestamp: NOW + 6 * 60_000 })), { ok: false, code: 'stale' });
  const nonces = new NonceMemory();
  const env = a.report();
  t.true(check(env, none, nonces).ok);
  nonces.remember(a.nodeId, env.payload.nonce as string, NOW, NOW - 300_000);
  t.like(check(env, none, nonces, NOW + 1000), { ok: false, code: 'replayed' });
});

test('the nonce memory stays bounded without opening a replay hole', (t) => {
  const m = new NonceMemory(3);
  for (let i = 0; i < 5; i++) m.remember('n', `nonce${i}`, NOW + i, NOW - 300_000);
  t.is(m.size, 3);
  // nonce0 and nonce1 were forgotten: their timestamps are now below the floor.
  t.is(m.check('n', 'nonce0', NOW), 'too-old');
  t.is(m.check('n', 'nonce1', NOW + 1), 'too-old');
  t.is(m.check('n', 'nonce4', NOW + 4), 'replayed');
  t.is(m.check('n', 'other', NOW + 5), 'fresh');
  // Entries past the window expire on their own.
  m.remember('n', 'late', NOW + 400_000, NOW + 100_000);
  t.is(m.size, 1);
});

test('the registry persists bindings atomically, keeps diskless nodes in memory only, and survives a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-reg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const reg = await Registry.open(dir);
  const a = node();
  const first = await handleReport(reg, Buffer.from(JSON.stringify(a.report())), NOW);
  t.deepEqual(first, { status: 200, body: { nodeId: a.nodeId, firstContact: true } });
  const replay = a.report();
  t.is((await handleReport(reg, Buffer.from(JSON.stringify(replay)), NOW)).status, 200);
  t.like(await handleReport(reg, Buffer.from(JSON.stringify(replay)), NOW + 10), { status: 409, body: { code: 'replayed' } });
  const saved = JSON.parse(readFileSync(join(dir, REGISTRY_FILE), 'utf8'));
  t.like(saved.nodes[0], { nodeId: a.nodeId, macs: [MAC], reports: 2, diskless: false });

  // A diskless node on another MAC: accepted, not written.
  const d = node(true);
  t.is((await handleReport(reg, Buffer.from(JSON.stringify(d.report({ mac: '52:54:00:00:09:09' }))), NOW)).status, 200);
  t.is(JSON.parse(readFileSync(join(dir, REGISTRY_FILE), 'utf8')).nodes.length, 1);
  t.is(reg.list().length, 2);

  // After a restart the binding holds: another key for the MAC is refused.
  const again = await Registry.open(dir);
  t.like(await handleReport(again, Buffer.from(JSON.stringify(node().report())), NOW), { status: 403, body: { code: 'mac-bound-to-another-key' } });
  t.true(await again.forget(a.nodeId));
  t.is((await handleReport(again, Buffer.from(JSON.stringify(node().report())), NOW)).status, 200);

  t.like(await handleReport(again, Buffer.from('{'), NOW), { status: 400 });
  t.like(await handleReport(again, Buffer.alloc(600 * 1024, 0x20), NOW), { status: 413 });
  writeFileSync(join(dir, REGISTRY_FILE), '[1]');
  await t.throwsAsync(Registry.open(dir), { instanceOf: RegistryFileError, message: /move it away/ });
});
