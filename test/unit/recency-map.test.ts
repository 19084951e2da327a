import test from 'ava';
import { RecencyMap } from '../../boot/recency-map.ts';

test('the oldest entry is the least recently used or set; peek does not count as a use', (t) => {
  const m = new RecencyMap<number>();
  m.set('a', 1);
  m.set('b', 2);
  m.set('c', 3);
  t.is(m.oldest(), 1);
  t.is(m.use('a'), 1);
  t.is(m.oldest(), 2);
  t.is(m.peek('b'), 2);
  t.is(m.oldest(), 2, 'peek leaves the order alone');
  m.set('b', 20);
  t.is(m.oldest(), 3, 'setting an existing key makes it the newest');
  t.true(m.delete('c'));
  t.false(m.delete('c'));
  t.is(m.oldest(), 1);
  t.true(m.delete('a'));
  t.true(m.delete('b'));
  t.is(m.oldest(), undefined);
  t.is(m.size, 0);
  m.set('d', 4);
  t.is(m.oldest(), 4, 'an emptied map links again');
  t.is(m.use('zz'), undefined);
});

test('entries are safe to walk while entries are used, deleted and added', (t) => {
  const m = new RecencyMap<number>();
  for (let i = 0; i < 5; i++) m.set(`k${i}`, i);
  const seen: string[] = [];
  for (const [k] of m.entries()) {
    seen.push(k);
    if (k === 'k1') {
      m.use('k1');
      m.delete('k3');
      m.set('k5', 5);
    }
  }
  t.deepEqual(seen, ['k0', 'k1', 'k2', 'k4', 'k5']);
});

test('under random use, set and delete it orders entries as a plain recency list does', (t) => {
  const m = new RecencyMap<number>();
  let order: string[] = []; // least recent first
  let seed = 7;
  // xorshift32: a fixed sequence, with low bits as random as the high ones.
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let i = 0; i < 5000; i++) {
    const key = `k${rand(40)}`;
    const op = rand(4);
    if (op === 0) {
      t.is(m.delete(key), order.includes(key));
      order = order.filter((k) => k !== key);
    } else if (op === 1) {
      t.is(m.use(key), order.includes(key) ? Number(key.slice(1)) : undefined);
      if (order.includes(key)) order = [...order.filter((k) => k !== key), key];
    } else {
      m.set(key, Number(key.slice(1)));
      order = [...order.filter((k) => k !== key), key];
    }
    t.is(m.size, order.length);
    t.is(m.oldest(), order.length ? Number(order[0].slice(1)) : undefined);
  }
});
