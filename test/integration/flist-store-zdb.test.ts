// zdb:// against our own `zeroboot zdb` on loopback and on a unix socket:
// chunks copied from a dir store read back through zdb, a password-protected
// private namespace, a refused password, a missing namespace.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RespClient } from '../../zdb/resp/client.ts';
import { StoreAuthError, StoreError } from '../../flist/stores/errors.ts';
import { openStore } from '../../flist/stores/open.ts';
import { mapLimit } from '../../flist/stores/limit.ts';
import { removeDir, startZdb, type ZdbProcess } from '../helpers/zdb-process.ts';

const ADMIN = 'admin-pass';

async function zdb(t: { teardown(f: () => unknown): void }, extra: string[] = [], listeners = 1): Promise<ZdbProcess> {
  const z = await startZdb(['--admin', ADMIN, ...extra], { listeners });
  t.teardown(async () => {
    await z.kill('SIGKILL');
    await removeDir(z.dir);
  });
  return z;
}

/** A private namespace with a password, made by the admin. */
async function namespace(port: number, name: string, password: string): Promise<void> {
  const admin = await RespClient.connect({ host: '127.0.0.1', port });
  try {
    await admin.auth(ADMIN);
    for (const cmd of [['NSNEW', name], ['NSSET', name, 'password', password], ['NSSET', name, 'public', '0']]) {
      const r = await admin.command(cmd);
      if (r.type === 'error') throw new Error(`${cmd.join(' ')}: ${r.text}`);
    }
  } finally {
    admin.close();
  }
}

test('chunks written through dir:// are copied to zdb:// and read back, 20 in flight, in a password-protected namespace', async (t) => {
  const z = await zdb(t);
  await namespace(z.port, 'chunks', 'ns-secret');
  const root = await mkdtemp(path.join(tmpdir(), 'flist-store-zdb-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = openStore(`dir://${root}`);
  const ids = Array.from({ length: 60 }, () => randomBytes(32));
  const datas = ids.map(() => randomBytes(1 + Math.floor(Math.random() * 600_000)));
  await mapLimit(ids, 20, (id, i) => dir.put(id, datas[i]));

  const store = openStore(`zdb://reader:ns-secret@127.0.0.1:${z.port}/chunks`);
  t.teardown(() => store.close());
  t.is(store.url, `zdb://reader@127.0.0.1:${z.port}/chunks`);
  await mapLimit(ids, 20, async (id) => store.put(id, (await dir.get(id))!));
  const back = await mapLimit(ids, 20, (id) => store.get(id));
  back.forEach((b, i) => t.true(b?.equals(datas[i]), `chunk ${i}`)); // not deepEqual: ava diffs big Buffers slowly
  t.true(await store.has(ids[0]));
  const missing = randomBytes(32);
  t.is(await store.get(missing), undefined);
  t.false(await store.has(missing));
  // the same value again: 0-db answers nil, still a success
  await store.put(ids[0], datas[0]);

  // stored under the raw 32-byte id in that namespace, nowhere else
  const check = await RespClient.connect({ host: '127.0.0.1', port: z.port });
  t.teardown(() => check.close());
  t.deepEqual(await check.command(['EXISTS', ids[0]]), { type: 'integer', value: 0n });
  await check.select('chunks', 'ns-secret');
  const raw = await check.command(["GET", ids[1]]);
  t.true(raw.type === "bulk" && raw.value?.equals(datas[1]));
});

test('a wrong password, or none, is a clear StoreAuthError that does not show the password', async (t) => {
  const z = await zdb(t);
  await namespace(z.port, 'private', 'right');
  const wrong = openStore(`zdb://:hunter2@127.0.0.1:${z.port}/private`);
  t.teardown(() => wrong.close());
  const e = await t.throwsAsync(() => wrong.get(randomBytes(32)), { instanceOf: StoreAuthError });
  t.is(e!.message, `store zdb://127.0.0.1:${z.port}/private: namespace "private" refused the password (Access denied)`);
  const none = openStore(`zdb://127.0.0.1:${z.port}/private`);
  t.teardown(() => none.close());
  await t.throwsAsync(() => none.put(randomBytes(32), Buffer.from('x')), { instanceOf: StoreAuthError, message: /needs a password/ });
  const absent = openStore(`zdb://127.0.0.1:${z.port}/nope`);
  t.teardown(() => absent.close());
  await t.throwsAsync(() => absent.has(randomBytes(32)), { instanceOf: StoreError, message: /namespace "nope" does not exist/ });
});

test('the default namespace over a unix socket, and a server that is down', async (t) => {
  const sockDir = await mkdtemp(path.join(tmpdir(), 'flist-store-zdb-sock-'));
  t.teardown(() => rm(sockDir, { recursive: true, force: true }));
  const sock = path.join(sockDir, 'zdb.sock');
  const z = await zdb(t, ['--socket', sock, '--dualnet'], 2);
  const store = openStore(`zdb://${sock}`);
  t.teardown(() => store.close());
  const id = randomBytes(32);
  const data = randomBytes(4096);
  await store.put(id, data);
  t.deepEqual(await store.get(id), data);
  const tcp = openStore(`zdb://127.0.0.1:${z.port}`);
  t.teardown(() => tcp.close());
  t.deepEqual(await tcp.get(id), data, 'the same default namespace over TCP');

  await z.kill('SIGKILL');
  const e = await t.throwsAsync(() => store.get(id), { instanceOf: StoreError });
  t.true(e!.message.startsWith(`store zdb://${sock}: `), e!.message);
  const again = await t.throwsAsync(() => openStore(`zdb://${sock}`).get(id), { instanceOf: StoreError, message: /cannot connect .*ENOENT|ECONNREFUSED/ });
  t.truthy(again);
});

test('after the server restarts, the store connects again (SELECT included) on the next operation', async (t) => {
  const first = await startZdb(['--admin', ADMIN]);
  t.teardown(() => removeDir(first.dir));
  await namespace(first.port, 'chunks', 'pw');
  const store = openStore(`zdb://:pw@127.0.0.1:${first.port}/chunks`);
  t.teardown(() => store.close());
  const id = randomBytes(32);
  await store.put(id, Buffer.from('before'));
  await first.kill('SIGTERM');
  await t.throwsAsync(() => store.get(id), { instanceOf: StoreError });
  const second = await startZdb(['--admin', ADMIN], { dir: first.dir, port: first.port });
  t.teardown(() => second.kill('SIGKILL'));
  t.deepEqual(await store.get(id), Buffer.from('before'));
});

test('a public namespace with a password: readable without it, a write is an error naming the store and the chunk', async (t) => {
  const z = await zdb(t);
  await namespace(z.port, 'pub', 'pw');
  const admin = await RespClient.connect({ host: '127.0.0.1', port: z.port });
  t.teardown(() => admin.close());
  await admin.auth(ADMIN);
  t.deepEqual(await admin.command(['NSSET', 'pub', 'public', '1']), { type: 'simple', text: 'OK' });
  const id = randomBytes(32);
  const writer = openStore(`zdb://:pw@127.0.0.1:${z.port}/pub`);
  t.teardown(() => writer.close());
  await writer.put(id, Buffer.from('chunk'));
  const reader = openStore(`zdb://127.0.0.1:${z.port}/pub`);
  t.teardown(() => reader.close());
  t.deepEqual(await reader.get(id), Buffer.from('chunk'));
  const e = await t.throwsAsync(() => reader.put(randomBytes(32), Buffer.from('x')), { instanceOf: StoreError });
  t.regex(e!.message, new RegExp(`^store zdb://127.0.0.1:${z.port}/pub: SET of chunk [0-9a-f]{64}: the server answered: `));
});
