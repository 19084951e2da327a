// The DHCP server on its own thread (server.dhcp.thread): replies do not
// wait for a busy main thread, and a crashed DHCP thread is started again
// with its leases. The server is the harness's child process; its test
// hooks are signals (harness/dhcp-server-entry.ts).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { Netns } from '../helpers/netns.ts';
import { startDhcp, tempDir, udhcpc, udhcpcScript } from '../helpers/dhcp-harness.ts';
import type { ServerHandle } from '../helpers/dhcp-harness.ts';

const SERVER = '10.51.0.1';

async function rig(t: ExecutionContext, thread: boolean) {
  const ns = await Netns.create('zbt');
  const tmp = await tempDir();
  t.teardown(async () => {
    await ns.destroy();
    await tmp.remove();
  });
  await ns.bridge('br0', `${SERVER}/24`);
  const dir = tmp.dir;
  const server = await startDhcp(ns, dir, {
    server: {
      address: SERVER,
      interfaces: ['br0'],
      dhcp: { mode: 'full', thread, leasesFile: join(dir, 'leases.json'), pool: { start: '10.51.0.100', end: '10.51.0.150', subnetMask: '255.255.255.0' } },
      http: { port: 8080 },
      stateDir: dir,
    },
  });
  t.teardown(() => server.stop().then(() => undefined));
  return { ns, server, script: await udhcpcScript(dir) };
}

function waitOutput(server: ServerHandle, re: RegExp, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (re.test(server.output())) return resolve();
      if (Date.now() > deadline) return reject(new Error(`no ${re} in the server's output:\n${server.output().slice(-3000)}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

test('a main thread busy for 2 s does not delay the DHCP exchange: the ACK comes well before it is free', async (t) => {
  const { ns, server, script } = await rig(t, true);
  // Warm the server (JIT, lease file) and the client's namespace before the clock runs.
  const warm = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:00:01' }), script, []);
  t.truthy(warm.bound, warm.output);
  const host = await ns.host('br0', { mac: '52:54:00:bb:00:02' });
  server.child.kill('SIGHUP');
  await waitOutput(server, /^main blocked$/m);
  const start = performance.now();
  const r = await udhcpc(host, script, []);
  const ms = performance.now() - start;
  t.truthy(r.bound, r.output);
  // The block lasts 2 s from before "main blocked" was read: a reply from the main thread would come after it ends.
  t.true(ms < 1200, `the exchange took ${Math.round(ms)} ms while the main thread was blocked`);
  // The events the main thread missed while blocked reach its timeline afterwards.
  await server.waitEvent((e) => e.mac === '52:54:00:bb:00:02' && e.kind === 'dhcp.ack');
});

test('a crashed DHCP thread is logged in one line, started again, and serves with the leases it had', async (t) => {
  const { ns, server, script } = await rig(t, true);
  const first = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:01:01' }), script, []);
  t.truthy(first.bound, first.output);
  server.child.kill('SIGWINCH');
  await waitOutput(server, /^dhcp restarted$/m);
  const crashLines = server.output().split('\n').filter((l) => l.includes('the DHCP thread stopped'));
  t.is(crashLines.length, 1, server.output());
  t.regex(crashLines[0], /crash requested by a test/);
  const second = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:01:02' }), script, []);
  t.truthy(second.bound, second.output);
  t.not(second.bound!.ip, first.bound!.ip, 'the restarted thread knows the lease given before the crash');
  const leases = await server.leases();
  t.like(leases.find((l) => l.mac === '52:54:00:bb:01:01'), { ip: first.bound!.ip, state: 'bound' });
  t.like(leases.find((l) => l.mac === '52:54:00:bb:01:02'), { ip: second.bound!.ip, state: 'bound' });
});
