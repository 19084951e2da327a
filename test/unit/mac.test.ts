import test from 'ava';
import { addToMac, bootifOf, hyphenMac, isUnicastMac, macFromBootif, macFromBytes, normalizeMac, parseSeparatedMac } from '../../lib/mac.ts';

test('normalizeMac accepts the usual spellings and refuses the rest', (t) => {
  t.is(normalizeMac('AA-BB-CC-DD-EE-FF'), 'aa:bb:cc:dd:ee:ff');
  t.is(normalizeMac('aabb.ccdd.eeff'), 'aa:bb:cc:dd:ee:ff');
  t.is(normalizeMac('aabbccddeeff'), 'aa:bb:cc:dd:ee:ff');
  t.is(normalizeMac('aa:bb:cc:dd:ee'), undefined);
  t.is(normalizeMac('zz:bb:cc:dd:ee:ff'), undefined);
  t.is(normalizeMac('aa bb cc dd ee ff'), undefined);
});

test('parseSeparatedMac takes only the named separators: GRUB names files with colons', (t) => {
  t.is(parseSeparatedMac('52:54:00:AB:CD:EF', ':'), '52:54:00:ab:cd:ef');
  t.is(parseSeparatedMac('52-54-00-ab-cd-ef', ':'), undefined);
  t.is(parseSeparatedMac('52-54-00-AB-CD-EF'), '52:54:00:ab:cd:ef');
  t.is(parseSeparatedMac('525400abcdef'), undefined);
  t.is(parseSeparatedMac('aabb.ccdd.eeff'), undefined);
  t.is(parseSeparatedMac(42), undefined);
});

test('unicast, bytes, the hex-hyphen form, counting up', (t) => {
  t.true(isUnicastMac('52:54:00:00:00:00'));
  t.false(isUnicastMac('03:00:00:00:00:00'));
  t.is(macFromBytes(Buffer.from('525400abcdef0102', 'hex')), '52:54:00:ab:cd:ef');
  t.is(macFromBytes(Buffer.from('aabbccddeeff0102', 'hex'), 8), 'aa:bb:cc:dd:ee:ff:01:02');
  t.is(macFromBytes(Buffer.from('00aabbccddeeff', 'hex').subarray(1)), 'aa:bb:cc:dd:ee:ff', 'a view into a larger buffer');
  t.is(macFromBytes(Buffer.alloc(0), 0), '');
  t.is(hyphenMac('52:54:00:AB:CD:01'), '52-54-00-ab-cd-01');
  t.is(hyphenMac('not a mac'), undefined);
  t.is(addToMac('52:54:00:ff:ff:fe', 3), '52:54:00:00:00:01', 'wraps inside the lower three bytes');
});

test('BOOTIF: written as 01- and the hex-hyphen MAC, read back to the canonical form', (t) => {
  t.is(bootifOf('52:54:00:AB:CD:01'), '01-52-54-00-ab-cd-01');
  t.is(macFromBootif('01-52-54-00-AB-CD-01'), '52:54:00:ab:cd:01');
  t.is(macFromBootif(bootifOf('02:00:00:00:00:09')!), '02:00:00:00:00:09');
  for (const bad of ['52-54-00-ab-cd-01', '06-52-54-00-ab-cd-01', '01-52:54:00:ab:cd:01', '01-52-54-00-ab-cd', '']) t.is(macFromBootif(bad), undefined, bad);
  t.is(bootifOf('nope'), undefined);
});
