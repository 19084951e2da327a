// deferPools (as `zeroboot agent` runs on a node): blank disks are formatted
// after the first report, not before it. The first report lists a blank
// disk as `preparing` while nothing has been written to it, and the node as
// diskless (its key only in memory); the next report goes out as soon as
// the pool is made, not at the interval, and has the pool, its zdb and the
// same node id, whose key is now on the pool. A second bring-up on that
// disk (a reboot) reuses the pool before its first report, same node id.
// No report built while the pool is being made shows it without its zdb.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentOptions } from '../../agent/run.ts';
import { IDENTITY_FILE } from '../../agent/identity.ts';
import { Registry } from '../../boot/registry/store.ts';
import { reportRequestHandler } from '../../boot/registry/http.ts';
import { hostAgentOptions, listenLocal, loopOn, unmountUnder, until } from '../helpers/agent-host.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'agent-deferred-pools-'));
let loop = '';
let agent: Agent | undefined;

interface Disk {
  name: string;
  state: string;
  type?: string;
  mountPoint?: string;
}


/** Whether btrfs's superblock spot (64 KiB in) is still all zero bytes. */
function superblockZero(): boolean {
  const fd = openSync(loop, 'r');
  try {
    const b = Buffer.alloc(4096);
    readSync(fd, b, 0, b.length, 64 * 1024);
    return b.every((x) => x === 0);
  } finally {
    closeSync(fd);
  }
}

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



/** A registry behind a server that also notes, per report, whether the disk was still unwritten. */
async function reportServer(t: import('ava').ExecutionContext): Promise<{ url: string; registry: Registry; zeroAtReport: boolean[] }> {
  const registry = await Registry.open(join(dir, 'state'));
  const handle = reportRequestHandler(registry);
  const zeroAtReport: boolean[] = [];
  const server = createServer((req, res) => {
    zeroAtReport.push(superblockZero());
    handle(req, res);
  });
  t.teardown(() => server.close());
  return { url: await listenLocal(server), registry, zeroAtReport };
}

async function options(url: string): Promise<AgentOptions> {
  return { ...(await hostAgentOptions(dir, url, [loop], 'missing-ssd')), deferZdbs: true, deferPools: true };
}

test.serial('the first report lists the blank disk as preparing, untouched; the pool, its zdb and the stored key follow in a report sent at once', async (t) => {
  const { url, registry, zeroAtReport } = await reportServer(t);
  agent = await Agent.bringUp(await options(url));
  t.deepEqual(
    agent.disks.map((d) => d.state),
    ['preparing'],
  );
  t.true(superblockZero(), 'bring-up wrote nothing to the blank disk');
  t.is(agent.zdbs.length, 0, 'no zdb before its pool exists');
  t.true(agent.identity.diskless, 'no pool holds the key yet');
  const firstId = agent.identity.nodeId;

  // An interval far beyond the wait below: the second report can only be the one sent when the pool is made.
  agent.startReporting(600_000);
  const first = await until('the first report', () => registry.get(firstId), 60_000);
  const firstSeen = first.firstSeen;
  t.true(zeroAtReport[0], 'the disk was still blank when the first report arrived');
  t.deepEqual(
    (first.lastReport.disks as Disk[]).map((d) => d.state),
    ['preparing'],
  );
  t.deepEqual(first.lastReport.zdbs, []);

  const a = agent;
  const later = await until('a report with the pool', () => {
    const n = registry.get(firstId);
    return n && (n.lastReport.disks as Disk[])[0].state !== 'preparing' ? n : undefined;
  }, 120_000);
  const disk = (later.lastReport.disks as Disk[])[0];
  t.is(disk.state, 'prepared');
  t.truthy(disk.type, 'typed SSD/HDD once it is a pool');
  t.is(later.nodeId, firstId, 'same node id');
  t.false(later.diskless, 'the key is on a pool now');
  t.is(later.firstSeen, firstSeen);
  t.is((later.lastReport.zdbs as unknown[]).length, 1, 'missing-ssd: the pool gets a zdb');
  t.is(a.zdbs.length, 1);
  const seed = JSON.parse(readFileSync(join(disk.mountPoint!, IDENTITY_FILE), 'utf8')) as { seed: string };
  t.truthy(seed.seed, 'the key is stored on the new pool');
  await registry.close();
});

test.serial('a reboot on the pool made then reuses it before the first report, under the same node id', async (t) => {
  const { url, registry } = await reportServer(t);
  agent = await Agent.bringUp(await options(url));
  t.deepEqual(
    agent.disks.map((d) => d.state),
    ['reused'],
  );
  t.false(agent.identity.diskless);
  const before = registry.list().filter((n) => !n.diskless).map((n) => n.nodeId);
  t.deepEqual(before, [agent.identity.nodeId], 'the node id the registry kept from the first test');
  t.is(agent.zdbs.length, 1);
});

test.serial('a report built at any moment while the pool is made never shows the pool without its zdb', async (t) => {
  unmountUnder(dir);
  execFileSync('wipefs', ['-a', '-q', loop]);
  execFileSync('dd', ['if=/dev/zero', `of=${loop}`, 'bs=1M', 'count=1', 'conv=fsync', 'status=none']);
  t.true(superblockZero(), 'the disk is blank again');
  const { url } = await reportServer(t);
  const a = (agent = await Agent.bringUp(await options(url)));
  t.deepEqual(a.disks.map((d) => d.state), ['preparing']);
  // A report built on every turn of the event loop: any await inside the pool's making lets one in.
  const seen: string[] = [];
  let polling = true;
  const poll = () => {
    const p = a.report().payload as { disks: Disk[]; zdbs: unknown[] };
    seen.push(`${p.disks[0].state}/${p.zdbs.length}`);
    if (polling) setImmediate(poll);
  };
  poll();
  a.startReporting(600_000);
  await until('the pool made', () => (seen.at(-1) === 'prepared/1' ? true : undefined), 120_000);
  polling = false;
  const torn = seen.filter((s) => s !== 'preparing/0' && s !== 'prepared/1');
  t.true(seen.length > 10, `${seen.length} reports built`);
  t.deepEqual([...new Set(torn)], [], `${torn.length} of ${seen.length} reports were neither before nor after`);
});
