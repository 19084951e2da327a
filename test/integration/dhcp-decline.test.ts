// DHCPDECLINE through the server, sent by a real client: busybox udhcpc -a
// ARP-probes the address it was given, finds another host on it, declines
// it and starts over. The server must quarantine the address (in memory and
// in the lease journal) and hand out another one.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Netns } from '../helpers/netns.ts';
import { startDhcp, tempDir, udhcpc, udhcpcScript } from '../helpers/dhcp-harness.ts';

const SERVER = '10.51.0.1';
const SQUATTED = '10.51.0.100';

test('a client that finds its address in use declines it: the address is quarantined, journaled, and not handed out again after a restart', async (t) => {
  const ns = await Netns.create('zbdc');
  const tmp = await tempDir();
  t.teardown(async () => {
    await ns.destroy();
    await tmp.remove();
  });
  const dir = tmp.dir;
  await ns.bridge('br0', `${SERVER}/24`);
  const script = await udhcpcScript(dir);
  const config = {
    server: {
      address: SERVER,
      interfaces: ['br0'],
      http: { port: 8080 },
      stateDir: dir,
      dhcp: {
        mode: 'full',
        leasesFile: join(dir, 'leases.json'),
        // Two addresses: the squatted one and one more.
        pool: { start: SQUATTED, end: '10.51.0.101', subnetMask: '255.255.255.0' },
      },
    },
  };
  let server = await startDhcp(ns, dir, config);
  // A host that uses the pool's first address without a lease (a static configuration).
  await ns.host('br0', { mac: '52:54:00:5a:00:01', cidr: `${SQUATTED}/24` });

  const mac = '52:54:00:5a:00:02';
  const client = await ns.host('br0', { mac });
  // -a: ARP-probe the offered address; -A 1: start over one second after a decline.
  const r = await udhcpc(client, script, ['-a1000'], { tries: 6, timeoutMs: 60_000 });
  t.truthy(r.bound, `no lease:\n${r.output}`);
  t.is(r.bound?.ip, '10.51.0.101', `the declined address is not offered again:\n${r.output}`);
  t.regex(r.output, /declin/i, 'udhcpc saw the conflict and declined');

  const decline = await server.waitEvent((e) => e.mac === mac && e.kind === 'dhcp.decline');
  t.truthy(decline);
  t.false(server.eventsFor(mac).some((e) => e.kind === 'dhcp.ignored' && /DECLINE/.test(e.reason ?? '')), 'the decline was accepted, not ignored');
  const journal = await readFile(join(dir, 'leases.json.journal'), 'utf8');
  t.regex(journal, new RegExp(`"declined":"${SQUATTED.replace(/\./g, '\\.')}"`), `the quarantine is journaled:\n${journal}`);

  // After a crash the quarantine still holds: a new client gets nothing rather than the squatted address.
  await server.stop('SIGKILL');
  server = await startDhcp(ns, dir, config, { name: 'restart' });
  const other = await ns.host('br0', { mac: '52:54:00:5a:00:03' });
  const second = await udhcpc(other, script, [], { tries: 2 });
  t.not(second.bound?.ip, SQUATTED, `a restarted server hands out a quarantined address:\n${second.output}`);
  t.true(server.eventsFor('52:54:00:5a:00:03').some((e) => e.kind === 'dhcp.ignored'), 'the pool is exhausted for the new client');
  t.is(await server.stop('SIGTERM'), 0);
});
