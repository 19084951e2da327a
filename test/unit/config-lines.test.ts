// The line of a key path in the YAML text, for `file:line:` in error lines.
import test from 'ava';
import { keyPath, lineOfKey } from '../../boot/config-lines.ts';

const TEXT = `server:
  address: 10.0.0.1
  dhcp: { mode: off, pol: 1 }
profiles:
  - name: a
    kernal: x
  - { name: b, kernel: y, initrd: [i1, i2] }
`;

test('key paths from the start of a message', (t) => {
  t.deepEqual(keyPath('server.dhcp.pol: unknown key'), ['server', 'dhcp', 'pol']);
  t.deepEqual(keyPath('profiles[1].initrd[0]: not in the store'), ['profiles', 1, 'initrd', 0]);
  t.deepEqual(keyPath('server.address must be an IPv4 address'), ['server', 'address']);
  t.is(keyPath('"quoted" is no path'), undefined);
});

test('the line of the deepest part present; none when even the first key is absent', (t) => {
  t.is(lineOfKey(TEXT, ['server', 'dhcp', 'pol']), 3);
  t.is(lineOfKey(TEXT, ['profiles', 0, 'kernal']), 6);
  t.is(lineOfKey(TEXT, ['profiles', 1, 'initrd', 1]), 7);
  // A key that is missing (a required one): the line of its mapping's key.
  t.is(lineOfKey(TEXT, ['server', 'stateDir']), 1);
  t.is(lineOfKey(TEXT, ['groups', 0]), undefined);
  t.is(lineOfKey('', ['server']), undefined);
});
