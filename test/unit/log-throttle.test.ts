import test from 'ava';
import { LogThrottle } from '../../lib/log-throttle.ts';

test('the first event of a kind is logged, then at most one line per interval with the count since the last', (t) => {
  let now = 1000;
  const throttle = new LogThrottle(10_000, () => now);
  t.is(throttle.note('a'), 1);
  for (let i = 0; i < 5; i++) t.is(throttle.note('a'), undefined);
  now += 9_999;
  t.is(throttle.note('a'), undefined);
  now += 1;
  t.is(throttle.note('a'), 7, 'the five, the one just before the interval, and this one');
  t.is(throttle.note('a'), undefined);
});

test('kinds are throttled apart', (t) => {
  const now = 0;
  const throttle = new LogThrottle(10_000, () => now);
  t.is(throttle.note('total'), 1);
  t.is(throttle.note('perAddress'), 1, 'another kind gets its own first line');
  t.is(throttle.note('total'), undefined);
  t.is(throttle.note(), 1, 'the default kind');
});
