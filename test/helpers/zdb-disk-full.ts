// Child process for the zdb disk-full test: run inside `unshare -m` with a
// small tmpfs mounted at argv[2]; argv[3] is 'batched' or 'write-through'.
// Fills the file system with SETs (new keys and overwrites of acknowledged
// ones) until a write fails, then prints what is served before and after
// RELOAD and after a reopen, with the acknowledged and attempted values.
import { statfsSync } from 'node:fs';
import { open, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openEngine } from '../../zdb/engine/index.ts';
import type { Engine } from '../../zdb/engine/index.ts';

const dir = process.argv[2]!;
const batched = process.argv[3] === 'batched';
const dataDir = join(dir, 'data');
const indexDir = join(dir, 'index');
await mkdir(dataDir);
await mkdir(indexDir);
const options = { dataDir, indexDir, datasize: 32 * 1024 * 1024, sync: false, batchWrites: batched };
let engine: Engine = openEngine(options);

// Leave ~192 KiB free so the namespace itself runs into the full disk quickly.
const filler = await open(join(dir, 'filler'), 'w');
const block = Buffer.alloc(64 * 1024, 7);
const free = (): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};
while (free() > 192 * 1024 + block.length) await filler.write(block);
await filler.close();

const value = (i: number): string => `${i}:`.padEnd(500 + ((i * 7919) % 9000), String.fromCharCode(97 + (i % 26)));
const acked = new Map<string, string>();
/** every value ever attempted per key: an unacknowledged one may be served only whole */
const attempted = new Map<string, string[]>();
let unflushed: [string, string][] = [];
let failure = '';
/** the error class of the failure: a SET reports ZdbWriteFailure, a flush the file error */
let failureKind = '';
const ns = () => engine.get('default')!;
for (let i = 0; i < 100000 && failure === ''; i++) {
  // every fourth write overwrites an acknowledged key
  const key = i % 4 === 3 && acked.size > 0 ? `k${(i * 31) % acked.size}` : `k${acked.size + unflushed.length}`;
  const v = value(i);
  attempted.set(key, [...(attempted.get(key) ?? []), v]);
  try {
    ns().set(Buffer.from(key), Buffer.from(v));
    unflushed.push([key, v]);
    // the server flushes before it acknowledges a batch
    if (!batched || i % 8 === 7) {
      engine.flush();
      for (const [k, val] of unflushed) acked.set(k, val);
      unflushed = [];
    }
  } catch (err) {
    failure = (err as Error).message;
    failureKind = (err as Error).name;
  }
}
const refused = (): string => {
  try {
    ns().set(Buffer.from('after-failure'), Buffer.from('x'));
    engine.flush();
    return 'stored';
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
};
const whileFull = refused();

/** Problems with what is served: acknowledged keys must be whole, the rest absent or whole. */
const check = (strict: boolean): string[] => {
  const problems: string[] = [];
  for (const [key, values] of attempted) {
    const got = ns().get(Buffer.from(key))?.payload.toString();
    const ack = acked.get(key);
    if (got === undefined) {
      if (ack !== undefined && strict) problems.push(`${key}: acknowledged but missing`);
    } else if (!values.includes(got)) {
      problems.push(`${key}: served torn or foreign data (${got.length} bytes)`);
    } else if (ack !== undefined && strict && got !== ack && values.indexOf(got) < values.indexOf(ack)) {
      problems.push(`${key}: served a value older than the acknowledged one`);
    }
  }
  return problems;
};
const beforeReload = check(true);
await rm(join(dir, 'filler'));
const stillRefused = refused();
engine.reload('default');
const afterReload = check(true);
const afterFree = refused();
const back = ns().get(Buffer.from('after-failure'))?.payload.toString();
await engine.close();
engine = openEngine(options);
const afterReopen = check(true);
await engine.close();
process.stdout.write(
  JSON.stringify({ failure, failureKind, acked: acked.size, whileFull, beforeReload, stillRefused, afterReload, afterFree, back, afterReopen }) + '\n',
);
