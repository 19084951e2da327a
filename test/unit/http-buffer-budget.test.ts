// The HTTP copy buffers: reused from download to download (allocating and
// shrinking them per download cost a fifth of the server's CPU in a boot
// storm), bounded in what is kept, and given back to the OS when idle.
import test from 'ava';
import { bufferBudget, CHUNK_BYTES, SMALL_CHUNK_BYTES } from '../../boot/http/artifacts.ts';

test('a released copy buffer is handed to the next download, not allocated again', (t) => {
  const b = bufferBudget(4 * CHUNK_BYTES);
  const first = [b.acquire(CHUNK_BYTES), b.acquire(SMALL_CHUNK_BYTES)];
  first.forEach((x) => b.recycle(x));
  const again = [b.acquire(CHUNK_BYTES), b.acquire(SMALL_CHUNK_BYTES)];
  t.is(again[0], first[0]);
  t.is(again[1], first[1]);
  t.is(again[0].length, CHUNK_BYTES);
});

test('free buffers are kept up to what the budget lets downloads hold; beyond, a released buffer gives its memory back at once', (t) => {
  const b = bufferBudget(2 * CHUNK_BYTES);
  const bufs = [0, 1, 2].map(() => b.acquire(CHUNK_BYTES));
  bufs.forEach((x) => b.recycle(x));
  t.deepEqual(bufs.map((x) => x.buffer.byteLength), [CHUNK_BYTES, CHUNK_BYTES, 0]);
});

test('idle free buffers give their memory back after a few seconds', async (t) => {
  const b = bufferBudget(4 * CHUNK_BYTES);
  const bufs = [0, 1, 2].map(() => b.acquire(CHUNK_BYTES));
  bufs.forEach((x) => b.recycle(x));
  const deadline = Date.now() + 30_000;
  while (bufs.some((x) => x.buffer.byteLength > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(bufs.map((x) => x.buffer.byteLength), [0, 0, 0]);
});
