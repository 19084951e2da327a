import test from 'ava';
import { existsSync } from 'node:fs';
import { Netns } from '../../qemu/netns.ts';
import { isAlive, waitForOutput } from '../../lib/process.ts';

test('destroySync (for exit handlers) kills what runs in the namespace by pid and deletes it', async (t) => {
  const ns = await Netns.create('zbds');
  t.teardown(() => ns.destroy());
  const child = ns.spawn('sh', ['-c', 'echo up; exec sleep 300']);
  await waitForOutput(child, /up/, 30_000);
  const [pid] = await ns.pids();
  t.true(pid !== undefined && isAlive(pid));
  t.true(existsSync(`/run/netns/${ns.name}`));
  ns.destroySync();
  t.false(existsSync(`/run/netns/${ns.name}`), 'the namespace is gone');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.false(isAlive(pid), 'its process is gone');
});
