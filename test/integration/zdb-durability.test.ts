// zdb --sync from outside: the real server runs under strace while clients
// pipeline SETs, and every reply that acknowledges a SET must come after an
// fdatasync of the data and the index file, begun after the write of that
// SET's entry returned. A kill -9 test cannot see this (the kernel keeps
// what was written without a flush); the syscall order can.
import test from 'ava';
import { Redis } from 'ioredis';
import path from 'node:path';
import { signalTraced, FLUSHES, readTrace, SENDS, straceArgs, unflushedBefore, WRITES, isFile, type Syscall } from '../helpers/syscall-trace.ts';
import { removeDir, startZdb, tempDir, type ZdbProcess } from '../helpers/zdb-process.ts';

const CLIENTS = 3;
const ROUNDS = 8;
const PIPELINE = 25;

/** Starts zdb under strace; the trace is complete once the server has exited. */
async function tracedZdb(t: { teardown(fn: () => Promise<void> | void): void }, flags: string[]): Promise<{ z: ZdbProcess; trace: string }> {
  const dir = await tempDir('zdb-durability-');
  const trace = path.join(dir, 'strace.out');
  const z = await startZdb(flags, { dir, wrap: straceArgs(trace, [...new Set([...FLUSHES, ...WRITES, ...SENDS])]) });
  t.teardown(async () => {
    signalTraced(z.proc.pid!, 'SIGKILL');
    await z.kill('SIGKILL');
    await removeDir(dir);
  });
  return { z, trace };
}

/** The reply zdb sends for a SET of a new key in user mode: the key as a bulk string. */
const setReply = (key: string) => Buffer.from(`$${key.length}\r\n${key}\r\n`);

test('--sync: every acknowledged SET is replied to only after its data and index entries were fdatasync\'d', async (t) => {
  const { z, trace } = await tracedZdb(t, ['--sync']);
  const acked: string[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const r = new Redis({ port: z.port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
      try {
        for (let round = 0; round < ROUNDS; round++) {
          // pipelined: the writes of a round share flushes (group commit), and each reply must still wait for them
          await Promise.all(
            Array.from({ length: PIPELINE }, async (_, i) => {
              const key = `dur-${c}-${String(round).padStart(2, '0')}-${String(i).padStart(3, '0')}`;
              if ((await r.call('SET', key, `value of ${key} `.repeat(1 + (i % 5)))) === key) acked.push(key);
            }),
          );
        }
      } finally {
        r.disconnect();
      }
    }),
  );
  t.is(acked.length, CLIENTS * ROUNDS * PIPELINE, 'every SET was acknowledged');
  signalTraced(z.proc.pid!, 'SIGTERM');
  t.is(await z.exited, 143, 'the server stopped cleanly (128 + SIGTERM, as 0-db)');

  const calls = await readTrace(trace);
  const inData = (p: string) => p.startsWith(z.dataDir + path.sep);
  const inIndex = (p: string) => p.startsWith(z.indexDir + path.sep);
  const flushes = calls.filter((c) => FLUSHES.includes(c.name));
  const problems: string[] = [];
  const replies = new Set<Syscall>();
  for (const key of acked) {
    const needle = setReply(key);
    const reply = calls.find((c) => SENDS.includes(c.name) && !isFile(c) && c.data.includes(needle));
    if (!reply) {
      problems.push(`${key}: its reply is not in the trace`);
      continue;
    }
    replies.add(reply);
    const k = Buffer.from(key);
    for (const [what, inDir] of [['data', inData], ['index', inIndex]] as const) {
      const why = unflushedBefore(calls, reply, k, inDir);
      if (why) problems.push(`${key} (${what}): ${why}`);
    }
  }
  t.log(`${acked.length} acknowledged SETs in ${replies.size} reply writes; ${flushes.length} flushes (${flushes.filter((f) => inData(f.target)).length} of data files)`);
  t.deepEqual(problems.slice(0, 10), [], `${problems.length} acknowledgements not preceded by their flush`);
  // not vacuous: the replies were found and several group commits happened
  t.true(replies.size >= ROUNDS, `replies found in the trace (${replies.size})`);
  t.true(flushes.filter((f) => inData(f.target)).length >= ROUNDS, 'at least one data flush per round');
});
