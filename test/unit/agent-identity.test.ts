import test from 'ava';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDENTITY_FILE, IdentityError, loadOrCreateIdentity } from '../../agent/identity.ts';
import { nodeIdOf } from '../../lib/signed-report.ts';

function pools(n: number): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'agent-id-'));
  return Array.from({ length: n }, (_, i) => {
    const p = join(dir, `pool${i}`);
    mkdirSync(p);
    return p;
  });
}

test('first boot makes one key and stores it on every pool; the next boot reads the same node id', async (t) => {
  const ps = pools(3);
  t.teardown(() => rmSync(join(ps[0], '..'), { recursive: true, force: true }));
  const first = await loadOrCreateIdentity(ps);
  t.is(first.source, 'new');
  t.deepEqual(first.writtenTo, ps);
  t.false(first.identity.diskless);
  t.is(first.identity.nodeId, nodeIdOf(first.identity.publicKey));
  for (const p of ps) t.is(statSync(join(p, IDENTITY_FILE)).mode & 0o777, 0o600);
  const again = await loadOrCreateIdentity([...ps].reverse());
  t.like(again, { source: 'disk', writtenTo: [], conflicts: [] });
  t.is(again.identity.nodeId, first.identity.nodeId);
});

test('one surviving pool carries the key to a replaced disk; a pool with another key is reported, not overwritten', async (t) => {
  const ps = pools(3);
  t.teardown(() => rmSync(join(ps[0], '..'), { recursive: true, force: true }));
  const { identity } = await loadOrCreateIdentity([ps[1]]);
  const other = await loadOrCreateIdentity([ps[2]]);
  const r = await loadOrCreateIdentity(ps);
  t.is(r.identity.nodeId, identity.nodeId);
  t.deepEqual(r.writtenTo, [ps[0]]);
  t.deepEqual(r.conflicts, [ps[2]]);
  t.is((await loadOrCreateIdentity([ps[2]])).identity.nodeId, other.identity.nodeId);
});

test('diskless: a key in memory only, new every time; a damaged identity file is one clear error', async (t) => {
  const a = await loadOrCreateIdentity([]);
  const b = await loadOrCreateIdentity([]);
  t.true(a.identity.diskless);
  t.is(a.source, 'memory');
  t.not(a.identity.nodeId, b.identity.nodeId);
  const [p] = pools(1);
  t.teardown(() => rmSync(join(p, '..'), { recursive: true, force: true }));
  writeFileSync(join(p, IDENTITY_FILE), '{"format":1,"seed":"c2hvcnQ="}');
  await t.throwsAsync(loadOrCreateIdentity([p]), { instanceOf: IdentityError, message: /move it away/ });
  t.is(readFileSync(join(p, IDENTITY_FILE), 'utf8'), '{"format":1,"seed":"c2hvcnQ="}');
});
