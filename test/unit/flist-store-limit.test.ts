import test from 'ava';
import { DEFAULT_TRANSFERS, mapLimit, Semaphore } from '../../flist/stores/limit.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

test('mapLimit keeps exactly the limit in flight and the results in input order', async (t) => {
  let inFlight = 0;
  let most = 0;
  const out = await mapLimit(Array.from({ length: 200 }, (_, i) => i), DEFAULT_TRANSFERS, async (n) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await tick();
    inFlight--;
    return n * 2;
  });
  t.is(DEFAULT_TRANSFERS, 20);
  t.is(most, 20);
  t.deepEqual(out, Array.from({ length: 200 }, (_, i) => i * 2));
});

test('mapLimit stops starting new work after a failure and rejects with it', async (t) => {
  let started = 0;
  await t.throwsAsync(
    () =>
      mapLimit(Array.from({ length: 100 }, (_, i) => i), 4, async (n) => {
        started++;
        await tick();
        if (n === 5) throw new Error('chunk 5 failed');
      }),
    { message: 'chunk 5 failed' },
  );
  t.true(started < 20, `started ${started}`);
  t.deepEqual(await mapLimit([], 20, async () => 1), []);
});

test('the semaphore never lets more than its slots run, and frees them on failure', async (t) => {
  const sem = new Semaphore(3);
  let inFlight = 0;
  let most = 0;
  const jobs = Array.from({ length: 30 }, (_, i) =>
    sem.run(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await tick();
      inFlight--;
      if (i % 7 === 0) throw new Error('x');
      return i;
    }),
  );
  const results = await Promise.allSettled(jobs);
  t.is(most, 3);
  t.is(results.filter((r) => r.status === 'fulfilled').length, 25);
  t.throws(() => new Semaphore(0), { instanceOf: RangeError });
});
