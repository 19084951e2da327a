import test from 'ava';
import { intToIp, ipToInt } from '../../lib/ipv4.ts';

/** The form ipToInt had before its hand-rolled loop: the reference its results must equal. */
function bySplit(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

test('ipToInt reads dotted quads and round-trips through intToIp', (t) => {
  t.is(ipToInt('10.0.0.5'), 167772165);
  t.is(ipToInt('255.255.255.255'), 0xffffffff);
  t.is(ipToInt('0.0.0.0'), 0);
  for (const ip of ['10.70.255.254', '192.168.1.1', '1.2.3.4']) t.is(intToIp(ipToInt(ip)), ip);
});

test('ipToInt reads malformed text as the split form did (no new values from bad input)', (t) => {
  const cases = ['foo', '1.2.3', '1.2.3.4.5', '1.2.3.999', '256.1.1.1', '1..2.3', '', '01.02.3.4', ' 1.2.3.4', '1.2.3.-4'];
  for (let i = 0; i < 2000; i++) cases.push([0, 0, 0, 0].map(() => String(Math.floor(Math.random() * (Math.random() < 0.1 ? 2000 : 256)))).join('.'));
  for (const ip of cases) t.is(ipToInt(ip), bySplit(ip), ip);
});
