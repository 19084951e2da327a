import test from 'ava';
import { BootTimeline } from '../../boot/timeline.ts';
import { LeasedAddresses, clientIpv4 } from '../../boot/leased-addresses.ts';

test('ACKs give a MAC its address; release, decline and NAK take it away', (t) => {
  const tl = new BootTimeline();
  const l = new LeasedAddresses();
  tl.subscribe((e) => l.observe(e));
  tl.record('52:54:00:00:00:01', 'dhcp.offer', { ip: '10.0.0.5' });
  t.is(l.ipOf('52:54:00:00:00:01'), undefined, 'an offer is not a lease');
  tl.record('52:54:00:00:00:01', 'dhcp.ack', { ip: '10.0.0.5' });
  t.is(l.ipOf('52:54:00:00:00:01'), '10.0.0.5');
  tl.record('52:54:00:00:00:01', 'dhcp.ack', {});
  t.is(l.ipOf('52:54:00:00:00:01'), '10.0.0.5', 'an ACK to an INFORM carries no address and changes nothing');
  for (const kind of ['dhcp.release', 'dhcp.decline', 'dhcp.nak'] as const) {
    tl.record('52:54:00:00:00:01', 'dhcp.ack', { ip: '10.0.0.5' });
    tl.record('52:54:00:00:00:01', kind);
    t.is(l.ipOf('52:54:00:00:00:01'), undefined, kind);
  }
});

test('one address, one MAC: the newer ACK takes it', (t) => {
  const l = new LeasedAddresses();
  l.seed([{ mac: '52-54-00-00-00-01', ip: '10.0.0.5', state: 'bound' }, { mac: '52:54:00:00:00:02', ip: '10.0.0.6', state: 'offered' }]);
  t.is(l.ipOf('52:54:00:00:00:01'), '10.0.0.5');
  t.is(l.ipOf('52:54:00:00:00:02'), undefined);
  l.observe({ time: '', mac: '52:54:00:00:00:03', kind: 'dhcp.ack', detail: { ip: '10.0.0.5' } });
  t.is(l.ipOf('52:54:00:00:00:01'), undefined);
  t.is(l.ipOf('52:54:00:00:00:03'), '10.0.0.5');
  t.is(l.macOf('10.0.0.5'), '52:54:00:00:00:03', 'and the address names its new holder');
  t.is(l.macOf('10.0.0.6'), undefined, 'an offered address names nobody');
});

test('bounded, and dual-stack peers compare as IPv4', (t) => {
  const l = new LeasedAddresses(2);
  for (let i = 1; i <= 3; i++) l.observe({ time: '', mac: `52:54:00:00:00:0${i}`, kind: 'dhcp.ack', detail: { ip: `10.0.0.${i}` } });
  t.is(l.ipOf('52:54:00:00:00:01'), undefined);
  t.is(l.ipOf('52:54:00:00:00:03'), '10.0.0.3');
  t.is(clientIpv4('::ffff:10.0.0.3'), '10.0.0.3');
  t.is(clientIpv4('10.0.0.3'), '10.0.0.3');
});
