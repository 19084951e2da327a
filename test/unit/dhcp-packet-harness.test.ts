// The test peers' DHCP writer/reader (harness/dhcp-packet.ts) against real
// packets recorded from busybox udhcpc and dnsmasq (test/fixtures/dhcp), with
// the expected values read by hand off the bytes and written here.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { buildPacket, decodeMessage, encodeMessage } from '../../harness/dhcp-packet.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/dhcp/${name}.bin`, import.meta.url));
const hex = (s: string) => Buffer.from(s, 'hex');

test('encoding udhcpc\'s DISCOVER fields gives the recorded packet byte for byte', (t) => {
  const built = encodeMessage({
    mac: '02:00:00:00:00:a1',
    xid: 0xa4a68a04,
    options: [
      [53, hex('01')],
      [57, hex('0240')],
      [55, hex('0103060c0f1c2a')],
      [60, Buffer.from('udhcp 1.35.0')],
      [61, hex('0102000000' + '00a1')],
    ],
  });
  t.deepEqual(built, fixture('udhcpc-discover'));
});

test('the fixed fields land at the offsets of RFC 2131 figure 1', (t) => {
  const b = buildPacket({ mac: '52:54:00:12:34:56', xid: 0x01020304, flags: 0x8000, hops: 2, ciaddr: '10.0.0.7', giaddr: '192.0.2.1', options: { 53: '03', 50: '0a000007' } });
  t.is(b.length, 300);
  t.deepEqual([...b.subarray(0, 4)], [1, 1, 6, 2]);
  t.is(b.toString('hex', 4, 8), '01020304');
  t.is(b.toString('hex', 10, 12), '8000');
  t.deepEqual([...b.subarray(12, 16)], [10, 0, 0, 7]);
  t.deepEqual([...b.subarray(24, 28)], [192, 0, 2, 1]);
  t.is(b.toString('hex', 28, 44), '525400123456' + '00'.repeat(10));
  t.is(b.toString('hex', 236, 240), '63825363');
  // ascending code order from the JSON object, then the end option
  t.is(b.toString('hex', 240, 250), '32040a000007' + '350103' + 'ff');
});

test('decoding dnsmasq\'s OFFER gives the values on the wire', (t) => {
  const m = decodeMessage(fixture('udhcpc-offer'));
  t.like(m, { op: 2, htype: 1, hlen: 6, hops: 0, xid: 0xa4a68a04, flags: 0, ciaddr: '0.0.0.0', yiaddr: '10.77.0.142', siaddr: '10.77.0.1', giaddr: '0.0.0.0', chaddr: '02:00:00:00:00:a1', sname: '', file: 'undionly.kpxe' });
  t.deepEqual(
    m.options.map(([c, v]) => [c, v.toString('hex')]),
    [[53, '02'], [54, '0a4d0001'], [51, '0000a8c0'], [58, '00005460'], [59, '000093a8'], [1, 'ffffff00'], [28, '0a4d00ff'], [3, '0a4d0001']],
  );
});

test('decoding dnsmasq\'s proxyDHCP OFFER: broadcast flag, no address, option 43 whole', (t) => {
  const m = decodeMessage(fixture('udhcpc-proxy-offer'));
  t.like(m, { op: 2, xid: 0x67d63416, flags: 0x8000, yiaddr: '0.0.0.0', chaddr: '02:00:00:00:00:a4', file: '' });
  const opts = new Map(m.options.map(([c, v]) => [c, v.toString('hex')]));
  t.is(opts.get(60), Buffer.from('PXEClient').toString('hex'));
  t.is(opts.get(97), '00' + '44332211' + '6655' + '8877' + '99aabbccddeeff00');
  t.is(opts.get(43), '060103' + '0a0400505845' + '08078000010a4d0001' + '090f80000c' + Buffer.from('Network boot').toString('hex') + 'ff');
});

test('a repeated option is one value, and option 52 makes file and sname hold options', (t) => {
  const b = encodeMessage({ mac: '02:00:00:00:00:01', xid: 1, options: [[52, hex('03')], [43, hex('0102')], [43, hex('0304')]] });
  // file (108) first, then sname (44), as RFC 2131 §4.1 orders them
  b.set([66, 1, 0x61, 255], 108);
  b.set([67, 1, 0x62, 255], 44);
  const m = decodeMessage(b);
  t.deepEqual(m.options.map(([c, v]) => [c, v.toString('hex')]), [[52, '03'], [43, '01020304'], [66, '61'], [67, '62']]);
  t.is(m.file, '');
  t.is(m.sname, '');
});

test('what is not a DHCP message is refused in one line', (t) => {
  t.throws(() => decodeMessage(Buffer.alloc(100)), { message: '100 bytes: shorter than a DHCP header (240)' });
  t.throws(() => decodeMessage(Buffer.alloc(300)), { message: 'no DHCP magic cookie at byte 236: 00000000' });
  const cut = fixture('udhcpc-offer').subarray(0, 246);
  t.throws(() => decodeMessage(cut), { message: /option 54 at byte 243 runs past its area/ });
});
