// The rig's server configuration for an image with at: boot layers: the
// server offers the image folder's .fl files and its chunks/ (key flists),
// and the profile tells /init where the server is (zeroboot.server=, with
// the HTTP port the configuration uses); without such layers neither is set.
import test from 'ava';
import { rigServerConfig } from '../../qemu/rig.ts';

const NET = { address: '10.0.0.1', bridge: 'br0', pool: { start: '10.0.0.100', end: '10.0.0.200', netmask: '255.255.255.0' }, stateDir: '/s', imageDir: '/img' };
type Profile = { args: Record<string, unknown> };

test('an image with at: boot layers: flists from the image folder, zeroboot.server on the profile', (t) => {
  const doc = rigServerConfig({ ...NET, layers: true });
  t.deepEqual(doc.flists, { dir: '/img', store: 'dir:///img/chunks' });
  t.is((doc.profiles as Profile[])[0].args['zeroboot.server'], 'http://10.0.0.1:8080');
});

test('the server URL follows the configured HTTP port; a caller\'s kernel argument wins', (t) => {
  const doc = rigServerConfig({ ...NET, layers: true, serverConfig: { server: { http: { port: 8181 } } } });
  t.is((doc.profiles as Profile[])[0].args['zeroboot.server'], 'http://10.0.0.1:8181');
  const own = rigServerConfig({ ...NET, layers: true, kernelArgs: { 'zeroboot.server': 'http://elsewhere' } });
  t.is((own.profiles as Profile[])[0].args['zeroboot.server'], 'http://elsewhere');
});

test('without at: boot layers neither key is set', (t) => {
  const doc = rigServerConfig(NET);
  t.is(doc.flists, undefined);
  t.false('zeroboot.server' in (doc.profiles as Profile[])[0].args);
});
