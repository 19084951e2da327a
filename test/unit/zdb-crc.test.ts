import test from 'ava';
import { randomBytes } from 'node:crypto';
import { crc32c } from '../../zdb/format/crc32c.ts';

function bitwise(buf: Uint8Array, init = 0): number {
  let c = init >>> 0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

test('matches CRCs stored by 0-db v2.0.7 in the fixture', (t) => {
  t.is(crc32c(Buffer.from('yes')), 0x74efd1a8);
  t.is(crc32c(Buffer.from('overwritten')), 0x31d5ebdd);
  t.is(crc32c(Buffer.from('value-1-xxxxxxxx')), 0x18aa39d1);
  t.is(crc32c(Buffer.from('seqvalue1')), 0x2e4ce771);
});

test('init 0 and no final xor: differs from standard CRC-32C, which it becomes with 0xFFFFFFFF in and out', (t) => {
  const check = Buffer.from('123456789');
  t.not(crc32c(check), 0xe3069283);
  t.is((crc32c(check, 0xffffffff) ^ 0xffffffff) >>> 0, 0xe3069283);
  t.is(crc32c(Buffer.alloc(0)), 0);
});

test('slicing-by-8 equals the bitwise definition at every length and alignment', (t) => {
  const data = randomBytes(300);
  for (let len = 0; len <= 64; len++) {
    for (let start = 0; start < 9; start++) {
      const slice = data.subarray(start, start + len);
      t.is(crc32c(data, 0, start, start + len), bitwise(slice));
    }
  }
  const big = randomBytes(1 << 16);
  t.is(crc32c(big), bitwise(big));
});

test('continuation over split buffers equals one pass', (t) => {
  const a = randomBytes(1000);
  const b = randomBytes(777);
  t.is(crc32c(b, crc32c(a)), crc32c(Buffer.concat([a, b])));
});
