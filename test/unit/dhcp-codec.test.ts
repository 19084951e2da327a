import test from 'ava';
import { decodeDhcp, encodeDhcp, DhcpDecodeError, macOf, messageType, MessageType } from '../../boot/dhcp/codec.ts';
import type { DhcpPacket } from '../../boot/dhcp/codec.ts';
import { Opt, encodeU8, encodeIp, optIp, optU8 } from '../../boot/dhcp/options.ts';

function request(options: [number, Buffer][]): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from('525400123456', 'hex').copy(chaddr);
  return {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0xdeadbeef, secs: 3, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr, sname: '', file: '', options: new Map(options),
  };
}

test('encode -> decode keeps header and options', (t) => {
  const p = request([[Opt.MESSAGE_TYPE, encodeU8(MessageType.DISCOVER)], [Opt.REQUESTED_IP, encodeIp('10.0.0.9')]]);
  const buf = encodeDhcp(p);
  t.is(buf.length, 300);
  const d = decodeDhcp(buf);
  t.deepEqual(d, p);
  t.is(macOf(d), '52:54:00:12:34:56');
  t.is(messageType(d), MessageType.DISCOVER);
  t.is(optIp(d, Opt.REQUESTED_IP), '10.0.0.9');
  t.is(optU8(d, Opt.MESSAGE_TYPE), 1);
  t.throws(() => decodeDhcp(buf.subarray(0, 239)), { instanceOf: DhcpDecodeError });
});
