import test from 'ava';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { CHUNK_SIZE, createChunkCodec } from '../../flist/chunk.ts';
import { ChunkPool } from '../../flist/chunk-pool.ts';
import { ChunkError, ChunkIdMismatchError, ChunkKeyMismatchError, FlistError } from '../../flist/errors.ts';

/** Chunks of a real binary plus a random one and a short tail, as a pack cuts a file. */
function chunks(): Buffer[] {
  const bash = readFileSync('/usr/bin/bash');
  const out: Buffer[] = [];
  for (let o = 0; o < Math.min(bash.length, 3 * CHUNK_SIZE); o += CHUNK_SIZE) out.push(bash.subarray(o, o + CHUNK_SIZE));
  out.push(randomBytes(CHUNK_SIZE), Buffer.from('tail'));
  return out;
}

test('the pool gives what the in-thread pipeline gives, in source order, and decodes it back', async (t) => {
  const pool = await ChunkPool.create({ threads: 2 });
  t.teardown(() => pool.close());
  const codec = await createChunkCodec();
  const input = chunks();
  const encoded = [];
  for await (const c of pool.encodeAll(input)) encoded.push(c);
  t.deepEqual(encoded, input.map((p) => codec.encode(p)));
  const plains = [];
  for await (const p of pool.decodeAll(encoded)) plains.push(p);
  t.deepEqual(plains, input);
  t.deepEqual(await pool.encode(input[0]), codec.encode(input[0]));
});

test("the caller's buffers stay usable: the pool sends copies, not the caller's memory", async (t) => {
  const pool = await ChunkPool.create({ threads: 1 });
  t.teardown(() => pool.close());
  const file = readFileSync('/usr/bin/bash');
  const slice = file.subarray(CHUNK_SIZE, 2 * CHUNK_SIZE);
  const encoded = await pool.encode(slice);
  t.is(slice.length, CHUNK_SIZE);
  t.is(file.buffer.byteLength > 0, true);
  const plain = await pool.decode(encoded.id, encoded.key, encoded.data);
  t.true(plain.equals(slice));
  t.is(encoded.data.length > 0, true, 'the data passed to decode is still there');
});

test('errors come back from the workers as the typed errors, naming the chunk id', async (t) => {
  const pool = await ChunkPool.create({ threads: 1, inlineBelow: 0 });
  t.teardown(() => pool.close());
  const codec = await createChunkCodec();
  const c = codec.encode(Buffer.from('some file content'));
  const bad = Buffer.from(c.data);
  bad[3] ^= 0x40;
  const e = await t.throwsAsync(pool.decode(c.id, c.key, bad), { instanceOf: ChunkIdMismatchError });
  t.true(e instanceof ChunkError);
  t.is(e.id, c.id.toString('hex'));
  t.regex(e.message, new RegExp(`^chunk ${c.id.toString('hex')}: the data hashes to [0-9a-f]{64}, not to its id`));
  await t.throwsAsync(pool.decode(c.id, Buffer.alloc(32, 1), c.data), { instanceOf: ChunkError, message: /AES-256-GCM authentication failed/ });
  await t.throwsAsync(pool.encode(Buffer.alloc(CHUNK_SIZE + 1)), { instanceOf: FlistError, message: /at most 524288 bytes/ });
  // The pool keeps working after refusals, and an error in a stream stops it at that chunk.
  t.deepEqual(await pool.decode(c.id, c.key, c.data), Buffer.from('some file content'));
  const stream = pool.decodeAll([{ id: c.id, key: c.key, data: c.data }, { id: c.id, key: c.key, data: bad }]);
  t.deepEqual((await stream.next()).value, Buffer.from('some file content'));
  await t.throwsAsync(stream.next(), { instanceOf: ChunkIdMismatchError });
  t.false(e instanceof ChunkKeyMismatchError);
});

test('a fast producer cannot run ahead of a slow consumer by more than the capacity', async (t) => {
  const pool = await ChunkPool.create({ threads: 2, capacity: 3, inlineBelow: 0 });
  t.teardown(() => pool.close());
  let pulled = 0;
  function* source() {
    for (let i = 0; i < 20; i++) {
      pulled++;
      yield Buffer.alloc(1024, i);
    }
  }
  let consumed = 0;
  let maxLead = 0;
  for await (const _ of pool.encodeAll(source())) {
    consumed++;
    maxLead = Math.max(maxLead, pulled - consumed);
    // Give the pool every chance to pull more while this consumer dawdles.
    await new Promise((r) => setTimeout(r, 5));
  }
  t.is(consumed, 20);
  t.true(maxLead <= 3, `lead ${maxLead}`);
});

test('the default size is the available cores; a closed pool refuses work, small chunks too', async (t) => {
  const pool = await ChunkPool.create();
  t.is(pool.threads, availableParallelism());
  await pool.close();
  await t.throwsAsync(pool.encode(Buffer.from('x')), { instanceOf: FlistError, message: /closed/ });
  await t.throwsAsync(pool.encode(Buffer.alloc(CHUNK_SIZE)), { instanceOf: FlistError, message: /closed/ });
  await t.throwsAsync(ChunkPool.create({ threads: 0 }), { instanceOf: FlistError, message: /threads must be a positive integer/ });
});
