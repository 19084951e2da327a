// The typed key index against a Map of the same operations: lookups, order,
// deletes inside probe runs (backward shift), growth and arena compaction.
import test from 'ava';
import { KeyIndex } from '../../zdb/engine/key-index.ts';
import type { KeyRecord } from '../../zdb/engine/records.ts';

function rec(n: number, keyLength: number): KeyRecord {
  return {
    keyLength,
    dataId: n % 7,
    offset: n * 3,
    length: n % 1000,
    crc: (n * 2654435761) >>> 0,
    timestamp: 1700000000 + n,
    idxId: n % 5,
    idxOffset: n * 11,
    idxPrevious: n * 13,
    parentId: n % 3,
    parentOffset: 0xffffffff - n,
  };
}

/** A deterministic pseudo-random sequence (no seed from the clock: a failure replays). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
}

function same(t: { deepEqual(a: unknown, b: unknown, m?: string): void }, index: KeyIndex, model: Map<string, KeyRecord>): void {
  t.deepEqual(
    index.entries().map(([k, r]) => [k.toString('latin1'), r]),
    [...model],
    'entries in insertion order',
  );
  let total = 0;
  for (const k of model.keys()) total += k.length;
  t.deepEqual([index.size, index.totalKeyLength], [model.size, total]);
}

test('random sets, updates and deletes give what a Map gives, order included', (t) => {
  const index = new KeyIndex();
  const model = new Map<string, KeyRecord>();
  const next = lcg(42);
  // few distinct keys, many operations: long probe runs, many deletes inside them
  for (let i = 0; i < 60000; i++) {
    const n = next() % 3000;
    const key = Buffer.from(`k${n}`.padEnd(1 + (n % 40), 'x'), 'latin1');
    const ks = key.toString('latin1');
    const op = next() % 10;
    if (op < 6) {
      const r = rec(i, key.length);
      index.set(key, r);
      model.set(ks, r);
    } else if (op < 9) {
      t.is(index.delete(key), model.delete(ks));
    } else {
      t.deepEqual(index.get(key), model.get(ks));
      t.is(index.has(key), model.has(ks));
    }
  }
  same(t, index, model);
  for (const [ks, r] of model) t.deepEqual(index.get(Buffer.from(ks, 'latin1')), r);
});

test('grows past its first table and arena, compacts after deletes, keeps binary keys apart', (t) => {
  const index = new KeyIndex();
  const model = new Map<string, KeyRecord>();
  const key = (i: number): Buffer => {
    const b = Buffer.alloc(200 + (i % 50));
    b.writeUInt32LE(i, 0); // keys differing only in binary bytes, long enough to fill the arena fast
    return b;
  };
  for (let i = 0; i < 20000; i++) {
    index.set(key(i), rec(i, key(i).length));
    model.set(key(i).toString('latin1'), rec(i, key(i).length));
  }
  // deleting most frees enough arena bytes to compact
  for (let i = 0; i < 20000; i++) {
    if (i % 4 === 0) continue;
    t.true(index.delete(key(i)));
    model.delete(key(i).toString('latin1'));
  }
  t.false(index.delete(key(1)));
  t.is(index.get(Buffer.alloc(0)), undefined);
  same(t, index, model);
  // ids and arena space freed are reused
  for (let i = 20000; i < 30000; i++) {
    index.set(key(i), rec(i, key(i).length));
    model.set(key(i).toString('latin1'), rec(i, key(i).length));
  }
  same(t, index, model);
});

test('timestamps outside 32 bits are kept as given', (t) => {
  const index = new KeyIndex();
  const r = { ...rec(1, 1), timestamp: 2 ** 40 + 5 };
  index.set(Buffer.from('a'), r);
  t.deepEqual(index.get(Buffer.from('a')), r);
});
