// The node agent's first report goes out before its zdbs start (deferZdbs,
// as `zeroboot agent` runs on a node): four zdb processes starting beside
// it made it several times slower under TCG. The report still names every
// zdb (disk, port, socket), as not yet healthy; the zdbs start once it is
// answered, and a server that never answers holds them back no longer than
// firstReportHoldMs. One loop device: with missing-ssd its pool gets a zdb
// whichever type it measures as.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentOptions } from '../../agent/run.ts';
import { parseMountinfo } from '../../agent/disks/users.ts';
import { Registry } from '../../boot/registry/store.ts';
import { reportRequestHandler } from '../../boot/registry/http.ts';
import { collectInventory, liveAddresses } from '../../agent/inventory/index.ts';
import { siSnapshot } from '../../agent/inventory/si.ts';
import { hostAgentOptions } from '../helpers/agent-host.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'agent-first-report-'));
let loop = '';
let agent: Agent | undefined;

function unmountAll(): void {
  const ours = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of ours.reverse()) execFileSync('umount', [m.mountPoint]);
}

test.before(() => {
  const file = join(dir, 'pool.img');
  writeFileSync(file, '');
  truncateSync(file, 160 * MiB);
  loop = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
});

test.afterEach.always(async () => {
  await agent?.stop();
  agent = undefined;
  unmountAll();
});

test.after.always(() => {
  if (loop) execFileSync('losetup', ['-d', loop]);
  rmSync(dir, { recursive: true, force: true });
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function options(url: string): Promise<AgentOptions> {
  return { ...(await hostAgentOptions(dir, url, [loop], 'missing-ssd')), deferZdbs: true };
}

async function until<T>(what: string, get: () => T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial('the first report leaves before any zdb runs and names it; the zdb starts after it, and a later report shows it healthy', async (t) => {
  const registry = await Registry.open(join(dir, 'state'));
  const handle = reportRequestHandler(registry);
  // What ran on the node when each report reached the server.
  const pidsAtReport: (number | undefined)[][] = [];
  const server = createServer((req, res) => {
    pidsAtReport.push(agent?.zdbs.map((z) => z.pid) ?? []);
    handle(req, res);
  });
  t.teardown(() => server.close());
  // systeminformation on: it is asked beside the disk preparation, and the result must be what asking first gives.
  agent = await Agent.bringUp({ ...(await options(await listen(server))), systeminformation: true });
  t.deepEqual(agent.inventory, collectInventory({ si: await siSnapshot(), addresses: liveAddresses() }));
  t.is(agent.zdbs.length, 1);
  t.is(agent.zdbs[0].pid, undefined, 'bring-up leaves the zdb to the first report');

  // 2.5 s: the registry takes one report per 2 s from an address.
  agent.startReporting(2_500);
  const nodeId = agent.identity.nodeId;
  const first = await until('the first report', () => registry.get(nodeId)?.lastReport);
  t.deepEqual(pidsAtReport[0], [undefined], 'no zdb process when the first report arrived');
  const zdbs = first.zdbs as { disk: string; port: number; socket: string; healthy: boolean; restarts: number }[];
  t.deepEqual(zdbs.map((z) => [z.disk, z.port, z.socket, z.healthy, z.restarts]), [[agent.zdbs[0].spec.disk, agent.zdbs[0].spec.port, agent.zdbs[0].spec.socket, false, 0]]);
  const a = agent;
  await until('the zdb to start', () => a.zdbs[0].pid);
  await until('a report with the zdb healthy', () => ((registry.get(nodeId)?.lastReport.zdbs as { healthy: boolean }[])[0].healthy ? true : undefined), 120_000);
});

test.serial('a server that never answers holds the zdbs back only firstReportHoldMs', async (t) => {
  // Takes the request and never answers: the agent's attempt runs to its 10 s timeout, then retries.
  const held: import('node:http').ServerResponse[] = [];
  const server = createServer((_req, res) => void held.push(res));
  t.teardown(() => {
    for (const r of held) r.destroy();
    server.close();
  });
  agent = await Agent.bringUp({ ...(await options(await listen(server))), firstReportHoldMs: 500, send: { timeoutMs: 60_000, attempts: 1 } });
  const started = Date.now();
  agent.startReporting(60_000);
  const a = agent;
  await until('the zdb to start', () => a.zdbs[0].pid, 30_000);
  t.true(Date.now() - started < 20_000, `started after ${Date.now() - started} ms`);
  t.true(held.length >= 1, 'the report was on its way, unanswered');
});
