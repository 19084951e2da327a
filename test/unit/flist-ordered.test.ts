import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { orderedWindow, TaskQueue } from '../../flist/ordered.ts';

test('TaskQueue runs at most its limit at once and rethrows the first failure on drain', async (t) => {
  const q = new TaskQueue(20);
  let running = 0;
  let peak = 0;
  for (let i = 0; i < 100; i++) {
    await q.add(async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(1 + (i % 3));
      running--;
    });
  }
  await q.drain();
  t.is(peak, 20);
  await q.add(async () => {
    throw new Error('boom');
  });
  await t.throwsAsync(() => q.drain(), { message: 'boom' });
});

test('orderedWindow yields in input order with at most `limit` started ahead', async (t) => {
  let started = 0;
  let consumed = 0;
  let ahead = 0;
  const out: number[] = [];
  for await (const v of orderedWindow([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
    started++;
    ahead = Math.max(ahead, started - consumed);
    await sleep(n);
    return n;
  })) {
    consumed++;
    out.push(v);
  }
  t.deepEqual(out, [5, 1, 4, 2, 3, 0, 6]);
  t.is(ahead, 3);
});
