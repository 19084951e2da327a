// The agent's bring-up on the host, end to end but without a VM: loop
// devices as the node's disks, a registry behind real HTTP on loopback.
// A second bring-up after unmounting everything (a reboot) keeps the node
// id, the pool labels, the SSD/HDD types and a key written through a zdb.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentOptions } from '../../agent/run.ts';
import { zdbPools } from '../../agent/zdb-supervisor.ts';
import { agentCmdline } from '../../agent/cmdline.ts';
import { parseMountinfo } from '../../agent/disks/users.ts';
import { Registry } from '../../boot/registry/store.ts';
import { reportRequestHandler } from '../../boot/registry/http.ts';
import { RespClient } from '../../zdb/resp/client.ts';
import { freePortPair } from '../../harness/listening.ts';

const ROOT = join(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'agent-run-'));
const loops: string[] = [];
let agent: Agent | undefined;

function unmountAll(): void {
  const ours = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of ours.reverse()) execFileSync('umount', [m.mountPoint]);
}

test.after.always(async () => {
  await agent?.stop();
  try {
    unmountAll();
  } finally {
    for (const dev of loops) execFileSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bring-up, a signed report accepted by the registry, and a reboot that keeps everything', async (t) => {
  for (const name of ['a', 'b']) {
    const file = join(dir, `${name}.img`);
    writeFileSync(file, '');
    truncateSync(file, 160 * MiB);
    loops.push(execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim());
  }
  const foreign = join(dir, 'foreign.img');
  writeFileSync(foreign, '');
  truncateSync(foreign, 160 * MiB);
  execFileSync('mkfs.ext4', ['-q', '-F', foreign]);
  loops.push(execFileSync('losetup', ['-f', '--show', foreign], { encoding: 'utf8' }).trim());

  const registry = await Registry.open(join(dir, 'state'));
  const server = createServer(reportRequestHandler(registry));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  // missing-ssd: loop devices over cached files measure as SSDs, and this rule still gives them zdbs.
  const opts: AgentOptions = {
    cmdline: agentCmdline(`runmode=dev farmer_id=7 missing-ssd zeroboot.server=${url}`),
    mountRoot: join(dir, 'mnt'),
    runDir: join(dir, 'run'),
    zeroboot: [process.execPath, '--disable-warning=ExperimentalWarning', join(ROOT, 'cli/zeroboot.ts')],
    basePort: 0,
    systeminformation: false,
    allowLoop: true,
    onlyDevices: loops,
    minDiskBytes: 128 * MiB,
    // A PING may wait seconds on a loaded 2-core machine; the report must not call a live zdb unhealthy for that.
    supervisor: { healthIntervalMs: 60_000, baseDelayMs: 200, pingTimeoutMs: 30_000 },
  };
  // zdb ports basePort and basePort + 1, both free now.
  opts.basePort = await freePortPair();
  const only = (a: Agent) => a.disks;

  agent = await Agent.bringUp(opts);
  const first = only(agent);
  t.deepEqual(first.map((d) => d.state), ['prepared', 'prepared', 'foreign']);
  t.is(first[2].reason, 'ext4 signature');
  t.false(agent.identity.diskless);
  const until = async (cond: () => Promise<boolean>) => {
    const end = Date.now() + 60_000;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await until(async () => (await Promise.all(agent!.zdbs.map((z) => z.check()))).every(Boolean));
  t.deepEqual(await agent.sendOnce(), { nodeId: agent.identity.nodeId, firstContact: true });
  const rec = registry.get(agent.identity.nodeId)!;
  t.like(rec.lastReport, { farmerId: 7, runmode: 'dev', diskless: false });
  const usage = rec.lastReport.agent as { rssBytes: number; peakRssBytes: number; cpuSeconds: number; uptimeSeconds: number };
  t.true(usage.rssBytes > 10 * MiB && usage.peakRssBytes >= usage.rssBytes && usage.cpuSeconds > 0 && usage.uptimeSeconds > 0, JSON.stringify(usage));
  // Loop devices over cached files measure as SSDs on a quiet machine, but under load one may time as an
  // HDD, and then zos's rule keeps the zdbs to the HDDs: expect what the rule says for the types measured.
  const served = zdbPools(first.filter((d) => d.state === 'prepared').map((d) => ({ name: d.name, type: d.type! })), true).map((d) => d.name);
  t.deepEqual(agent.zdbs.map((z) => z.spec.disk).sort(), [...served].sort());
  const reported = rec.lastReport.zdbs as { healthy: boolean }[];
  t.true(reported.length === served.length && reported.every((z) => z.healthy), JSON.stringify(reported));

  const z = agent.zdbs.find((s) => s.spec.disk === served[0])!;
  const c = await RespClient.connect({ path: z.spec.socket });
  await c.select('default', z.spec.adminSecret);
  t.deepEqual(await c.command(['SET', 'survives', 'the reboot']), { type: 'bulk', value: Buffer.from('survives') });
  c.close();

  // Reboot: processes gone, everything unmounted, the same disks.
  await agent.stop();
  unmountAll();
  const before = { id: agent.identity.nodeId, pools: first.map((d) => [d.name, d.label, d.type]) };
  agent = await Agent.bringUp(opts);
  const second = only(agent);
  t.is(agent.identity.nodeId, before.id);
  t.deepEqual(second.map((d) => [d.name, d.label, d.type]), before.pools);
  t.deepEqual(second.map((d) => [d.state, d.by]), [['reused', 'persisted'], ['reused', 'persisted'], ['foreign', undefined]]);
  const z2 = agent.zdbs.find((s) => s.spec.disk === served[0])!;
  await until(() => z2.check());
  const c2 = await RespClient.connect({ path: z2.spec.socket });
  await c2.select('default', z2.spec.adminSecret);
  t.deepEqual(await c2.command(['GET', 'survives']), { type: 'bulk', value: Buffer.from('the reboot') });
  c2.close();
  t.deepEqual(await agent.sendOnce(), { nodeId: before.id, firstContact: false });
});
