// FileSet write batching: a batched append that fails when written behind the
// caller's back must still fail the flush the server runs before acknowledging.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { FileSet } from '../../zdb/engine/file-set.ts';

test('a failed end-of-turn flush is reported by the next flush()', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zdb-fileset-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = new FileSet(dir, 'd', true);
  t.teardown(() => files.close());
  // d0 does not exist: writing the batched bytes fails (ENOENT)
  files.append(0, Buffer.from('payload'), 7, 28);
  await turn();
  t.throws(() => files.flush(), { code: 'ENOENT' });
});
