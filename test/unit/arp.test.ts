import test from 'ava';
import { parseArpTable, arpLookup } from '../../boot/netif/arp.ts';

const TABLE = `IP address       HW type     Flags       HW address            Mask     Device
10.77.0.100      0x1         0x2         52:54:00:AA:BB:01     *        br0
10.77.0.101      0x1         0x0         00:00:00:00:00:00     *        br0
10.77.0.102      0x1         0x6         52:54:00:aa:bb:02     *        br0
`;

test('complete entries map IPs to normalised MACs; incomplete ones are skipped', (t) => {
  const m = parseArpTable(TABLE);
  t.is(m.get('10.77.0.100'), '52:54:00:aa:bb:01');
  t.false(m.has('10.77.0.101'));
  t.is(m.get('10.77.0.102'), '52:54:00:aa:bb:02');
});

test('lookup survives an unreadable table and garbage', (t) => {
  t.is(arpLookup('10.77.0.100', () => TABLE), '52:54:00:aa:bb:01');
  t.is(arpLookup('10.77.0.100', () => { throw new Error('EACCES'); }), undefined);
  t.is(arpLookup('10.77.0.100', () => 'garbage\n\n1 2 3'), undefined);
});
