// The demo's dashboard from the host: a listener on a namespace's loopback
// (unreachable from the host otherwise) answered through the port bridge,
// a plain request and a long-lived stream alike; closing the bridge kills
// its process in the namespace.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Netns } from '../../qemu/netns.ts';
import { startPortBridge } from '../../qemu/port-bridge.ts';
import { sh, waitForOutput } from '../helpers/netns.ts';

test('a port on the namespace\'s loopback answers on the host\'s loopback through the bridge', async (t) => {
  const ns = await Netns.create('zbbr');
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bridge-'));
  t.teardown(async () => {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  const server = ns.spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('inside ' + q.url)).listen(18081, '127.0.0.1', () => console.log('up'))`]);
  await waitForOutput(server, /up/, 30_000);
  // Not reachable from the host without the bridge.
  await t.throwsAsync(fetch('http://127.0.0.1:18081/x', { signal: AbortSignal.timeout(2000) }));
  const bridge = await startPortBridge(ns, { host: '127.0.0.1', port: 18081 }, path.join(dir, 'bridge.sock'));
  const answers = await Promise.all([1, 2, 3].map(async (i) => (await fetch(`http://127.0.0.1:${bridge.port}/dashboard/${i}`)).text()));
  t.deepEqual(answers, ['inside /dashboard/1', 'inside /dashboard/2', 'inside /dashboard/3']);
  await bridge.close();
  await t.throwsAsync(fetch(`http://127.0.0.1:${bridge.port}/`, { signal: AbortSignal.timeout(2000) }));
  const pids = async () => (await sh('ip', ['netns', 'pids', ns.name])).trim().split('\n').filter(Boolean);
  const deadline = Date.now() + 20_000;
  while ((await pids()).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(await pids(), [String(server.pid)], 'only the test\'s server is left in the namespace');
});
