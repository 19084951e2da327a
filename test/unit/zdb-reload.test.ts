// RELOAD that fails to reopen a namespace (here: its descriptor damaged on
// disk) keeps the namespace listed and readable, refuses writes, and a later
// RELOAD once the file is fixed brings it back.
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openEngine, ZdbEngineError } from '../../zdb/engine/index.ts';

test('a failed RELOAD leaves the namespace listed, readable and refusing writes; a retry reopens it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zdb-reload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const engine = openEngine({ dataDir: path.join(dir, 'data'), indexDir: path.join(dir, 'index'), datasize: 1 << 20, sync: false });
  engine.get('default')!.set(Buffer.from('k'), Buffer.from('v'));
  const descriptor = path.join(dir, 'index', 'default', 'zdb-namespace');
  const good = await readFile(descriptor);
  await writeFile(descriptor, Buffer.from('garbage'));

  t.throws(() => engine.reload('default'), { instanceOf: ZdbEngineError });
  const kept = engine.get('default');
  t.truthy(kept, 'the namespace is still listed');
  t.is(kept!.get(Buffer.from('k'))?.payload.toString(), 'v');
  t.throws(() => kept!.set(Buffer.from('k2'), Buffer.from('v2')), { instanceOf: ZdbEngineError, message: /closed/ });

  await writeFile(descriptor, good);
  const fresh = engine.reload('default');
  t.is(fresh.get(Buffer.from('k'))?.payload.toString(), 'v');
  fresh.set(Buffer.from('k2'), Buffer.from('v2'));
  t.is(engine.get('default')!.get(Buffer.from('k2'))?.payload.toString(), 'v2');
  await engine.close();
});
