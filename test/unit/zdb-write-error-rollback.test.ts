// Batched writes and a write error (ENOSPC injected on one file's writes):
// what the namespace serves while failed must be what the files hold, so
// RELOAD serves the same acknowledged values, and RSCAN still lists them.
import test from 'ava';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openEngine } from '../../zdb/engine/index.ts';
import type { Engine, Namespace } from '../../zdb/engine/index.ts';
import type { ZdbNamespace } from '../../zdb/engine/namespace.ts';

const failing = new Set<number>();
const realWriteSync = fs.writeSync;
(fs as unknown as { writeSync: unknown }).writeSync = (fd: number, ...rest: unknown[]): number => {
  if (failing.has(fd)) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return (realWriteSync as (...a: unknown[]) => number)(fd, ...rest);
};

const B = (s: string): Buffer => Buffer.from(s);

async function batched(t: { teardown(f: () => unknown): void }): Promise<{ engine: Engine; ns: () => Namespace; zns: () => ZdbNamespace }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zdb-rollback-'));
  const engine = openEngine({ dataDir: path.join(dir, 'data'), indexDir: path.join(dir, 'index'), datasize: 1 << 20, sync: false, batchWrites: true });
  t.teardown(async () => {
    failing.clear();
    await engine.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return { engine, ns: () => engine.get('default')!, zns: () => engine.get('default') as unknown as ZdbNamespace };
}

test.serial('a DEL whose data tombstone fails leaves the acknowledged value both while failed and after RELOAD', async (t) => {
  const { engine, ns, zns } = await batched(t);
  ns().set(B('k'), B('v1'));
  engine.flush(); // acknowledged
  failing.add(zns().dataFiles.fd(zns().fileId));
  t.throws(() => {
    ns().del(B('k'));
    engine.flush();
  });
  failing.clear();
  t.is(ns().get(B('k'))?.payload.toString(), 'v1', 'served while failed');
  engine.reload('default');
  t.is(ns().get(B('k'))?.payload.toString(), 'v1', 'served after RELOAD (the index flag reached the file before the lost tombstone)');
});

test.serial('a FLUSH whose data tombstones fail leaves every acknowledged value after RELOAD', async (t) => {
  const { engine, ns, zns } = await batched(t);
  ns().set(B('a'), B('va'));
  ns().set(B('b'), B('vb'));
  engine.flush();
  failing.add(zns().dataFiles.fd(zns().fileId));
  t.throws(() => {
    ns().flush();
    engine.flush();
  });
  failing.clear();
  t.deepEqual([ns().get(B('a'))?.payload.toString(), ns().get(B('b'))?.payload.toString()], ['va', 'vb'], 'served while failed');
  engine.reload('default');
  t.deepEqual([ns().get(B('a'))?.payload.toString(), ns().get(B('b'))?.payload.toString()], ['va', 'vb'], 'served after RELOAD');
});

test.serial('RSCAN lists the acknowledged keys after a write error dropped a batched SET', async (t) => {
  const { engine, ns, zns } = await batched(t);
  ns().set(B('a'), B('va'));
  ns().set(B('b'), B('vb'));
  engine.flush();
  failing.add(zns().dataFiles.fd(zns().fileId));
  t.throws(() => {
    ns().set(B('c'), B('vc'));
    engine.flush();
  });
  failing.clear();
  t.deepEqual(ns().scan(undefined, 10, false)?.items.map((i) => i.key.toString()), ['a', 'b'], 'SCAN');
  t.deepEqual(ns().scan(undefined, 10, true)?.items.map((i) => i.key.toString()), ['b', 'a'], 'RSCAN');
  t.is(ns().stats().dataOffset, fs.statSync(zns().dataFiles.path(0)).size, 'data_current_offset is the end of what the file holds');
});

test.serial('a key changed several times in a lost batch goes back to its acknowledged value, a key inserted and deleted in it stays absent', async (t) => {
  const { engine, ns, zns } = await batched(t);
  ns().set(B('k'), B('v1'));
  engine.flush();
  failing.add(zns().dataFiles.fd(zns().fileId));
  // the key arrives in a reused buffer, as from a socket read: the undo log keeps its own copy
  const reused = Buffer.from('k');
  t.throws(() => {
    ns().set(reused, B('v2'));
    ns().set(reused, B('v3'));
    reused.write('n');
    ns().set(reused, B('vn'));
    ns().del(reused);
    engine.flush();
  });
  failing.clear();
  t.is(ns().get(B('k'))?.payload.toString(), 'v1', 'the oldest record of the batch wins');
  t.is(ns().get(B('n')), undefined);
  t.is(ns().stats().entries, 1);
});
