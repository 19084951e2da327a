// The rig reads the server's API on its management listener (loopback inside
// the rig's namespace), with the bearer token when the listener is bound
// wider. No VM is booted: a script request made with curl in the namespace
// stands in for a node.
import test from 'ava';
import { startRig } from '../../qemu/rig.ts';
import type { Rig } from '../../qemu/rig.ts';

const MAC = '02:00:00:00:00:42';

async function exercise(t: import('ava').ExecutionContext, rig: Rig): Promise<void> {
  t.deepEqual(await rig.machines(), []);
  t.is(await rig.timeline(MAC), undefined);
  const script = await rig.ns.exec('curl', ['-fsS', `${rig.serverUrl}/ipxe?mac=${MAC}`]);
  t.regex(script.stdout, /^#!ipxe/);
  const event = await rig.waitForEvent(MAC, 'http.script', 30_000);
  t.is(event.detail?.profile, 'zos');
  const machines = await rig.machines();
  t.deepEqual(machines.map((m) => m.mac), [MAC]);
  t.is(machines[0].selection.profile, 'zos');
  const refused = await rig.ns.exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${rig.serverUrl}/api/machines`]);
  t.is(refused.stdout, '404', 'the node-facing port serves no API');
}

test.serial('loopback management listener: no token', async (t) => {
  const rig = await startRig({ dhcp: 'off' });
  try {
    t.regex(rig.apiUrl, /^http:\/\/127\.0\.0\.1:8081\/api$/);
    await exercise(t, rig);
  } finally {
    await rig.stop();
  }
});

test.serial('management listener on every address: the rig sends the token from the state directory', async (t) => {
  const rig = await startRig({ dhcp: 'off', serverConfig: { server: { management: { host: '0.0.0.0', port: 9081 } } } });
  try {
    t.regex(rig.apiUrl, /:9081\/api$/);
    const bare = await rig.ns.exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${rig.apiUrl}/machines`]);
    t.is(bare.stdout, '401');
    await exercise(t, rig);
  } finally {
    await rig.stop();
  }
});
