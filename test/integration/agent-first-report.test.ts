// The node agent's first report goes out before its zdbs start (deferZdbs,
// as `zeroboot agent` runs on a node): four zdb processes starting beside
// it made it several times slower under TCG. The report still names every
// zdb (disk, port, socket), as not yet healthy; the zdbs start once it is
// answered, and a server that never answers holds them back no longer than
// firstReportHoldMs. One loop device: with missing-ssd its pool gets a zdb
// whichever type it measures as.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentOptions } from '../../agent/run.ts';
import { Registry } from '../../boot/registry/store.ts';
import { reportRequestHandler } from '../../boot/registry/http.ts';
import { collectInventory, liveAddresses } from '../../agent/inventory/index.ts';
import { siSnapshot } from '../../agent/inventory/si.ts';
import { hostAgentOptions, listenLocal, loopOn, unmountUnder, until } from '../helpers/agent-host.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'agent-first-report-'));
let loop = '';
let agent: Agent | undefined;


test.before(() => {
  loop = loopOn(join(dir, 'pool.img'), 160 * MiB);
});

test.afterEach.always(async () => {
  await agent?.stop();
  agent = undefined;
  unmountUnder(dir);
});

test.after.always(() => {
  if (loop) execFileSync('losetup', ['-d', loop]);
  rmSync(dir, { recursive: true, force: true });
});


async function options(url: string): Promise<AgentOptions> {
  return { ...(await hostAgentOptions(dir, url, [loop], 'missing-ssd')), deferZdbs: true };
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
  agent = await Agent.bringUp({ ...(await options(await listenLocal(server))), systeminformation: true });
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
  agent = await Agent.bringUp({ ...(await options(await listenLocal(server))), firstReportHoldMs: 500, send: { timeoutMs: 60_000, attempts: 1 } });
  const started = Date.now();
  agent.startReporting(60_000);
  const a = agent;
  await until('the zdb to start', () => a.zdbs[0].pid, 30_000);
  t.true(Date.now() - started < 20_000, `started after ${Date.now() - started} ms`);
  t.true(held.length >= 1, 'the report was on its way, unanswered');
});
