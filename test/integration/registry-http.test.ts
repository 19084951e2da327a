// The node registry inside the composed boot server (boot/server.ts), on
// loopback: reports signed by the agent's own code (real ed25519 keys) are
// posted to the node-facing port, the nodes are read on the management port
// (behind its token) and not on the node port, forgeries, replays, a key
// that is not the MAC's, wrong content types, oversized bodies and floods
// are refused, the registry outlives a restart, and the machine script
// tells the node where the server is. Each test posts from its own
// 127.0.0.x address, as the rate limit counts per address.
import test from 'ava';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../boot/config.ts';
import { startBootServer, type BootServer } from '../../boot/server.ts';
import { silentLogger } from '../../boot/log.ts';
import { collectInventory } from '../../agent/inventory/index.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import { loadOrCreateIdentity, type Identity } from '../../agent/identity.ts';
import { buildReport, signReport } from '../../agent/report.ts';
import { REPORT_PATH, type SignedEnvelope } from '../../lib/signed-report.ts';
import { MAX_REPORT_BYTES } from '../../boot/registry/handler.ts';
import { DEFAULT_REPORT_RATE } from '../../boot/registry/http.ts';
import { httpCall } from '../helpers/http-call.ts';

const FIX = join(import.meta.dirname, '../fixtures/agent');
const inventory = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, [{ sizeBytes: 1e12, type: 'hdd' }]);
const MAC_A = '52:54:00:aa:00:01';
const MAC_B = '52:54:00:aa:00:02';

let dir: string;
let server: BootServer;

function config() {
  return parseConfig({
    server: {
      address: '127.0.0.1',
      stateDir: join(dir, 'state'),
      ipxeDir: '/usr/lib/ipxe',
      dhcp: { mode: 'off' },
      tftp: { enabled: false },
      http: { host: '127.0.0.1', port: 0 },
      management: { host: '127.0.0.1', port: 0, auth: 'token' },
    },
    profiles: [{ name: 'zos', kernel: 'zos/vmlinuz', initrd: [], args: { runmode: 'dev' } }],
    machines: [{ mac: MAC_A, profile: 'zos' }],
  });
}

const call = httpCall;

const json = { 'content-type': 'application/json' };
const post = (env: SignedEnvelope | string, from: string) =>
  call(`${server.http.url}${REPORT_PATH}`, { method: 'POST', from, headers: json, body: typeof env === 'string' ? env : JSON.stringify(env) });
const api = (path: string, from = '127.0.0.1') => call(`${server.management!.url}${path}`, { from, token: server.apiToken!.token });

async function identityIn(name: string): Promise<Identity> {
  await mkdir(join(dir, name), { recursive: true });
  return (await loadOrCreateIdentity([join(dir, name)])).identity;
}

function report(identity: Identity, mac: string): SignedEnvelope {
  return signReport(buildReport({ identity, inventory, capacity: cap, disks: [], zdbs: [], bootMac: mac, runmode: 'dev' }), identity);
}

let nodeA: Identity;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zb-registry-http-'));
  server = await startBootServer(config(), silentLogger);
  nodeA = await identityIn('pool-a');
});

test.after.always(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test.serial('a signed report is accepted, listed on the management port behind the token, and not readable on the node port', async (t) => {
  const r = await post(report(nodeA, MAC_A), '127.0.0.11');
  t.is(r.status, 200, r.body);
  t.deepEqual(JSON.parse(r.body), { nodeId: nodeA.nodeId, firstContact: true });

  const list = await api('/nodes');
  t.is(list.status, 200, list.body);
  const doc = JSON.parse(list.body) as { total: number; nodes: { nodeId: string; macs: string[]; diskless: boolean; lastReport: string; capacity: unknown }[] };
  t.is(doc.total, 1);
  t.is(doc.nodes[0].nodeId, nodeA.nodeId);
  t.deepEqual(doc.nodes[0].macs, [MAC_A]);
  t.false(doc.nodes[0].diskless);
  t.deepEqual(doc.nodes[0].capacity, JSON.parse(JSON.stringify(cap)));
  t.true(Math.abs(Date.parse(doc.nodes[0].lastReport) - Date.now()) < 60_000);

  const one = await api(`/nodes/${nodeA.nodeId}`);
  t.is(one.status, 200);
  const detail = JSON.parse(one.body) as { report: { mac: string; inventory: { cpu: { logical: number } } } };
  t.is(detail.report.mac, MAC_A);
  t.is(detail.report.inventory.cpu.logical, inventory.cpu.logical);
  t.is((await api('/nodes/nobody')).status, 404);

  // The management port's own rule still holds: no token, no nodes.
  t.is((await call(`${server.management!.url}/nodes`, { from: '127.0.0.1' })).status, 401);
  // The node port answers reports only: the rest of /api stays off it.
  for (const path of ['/api/nodes', `/api/nodes/${nodeA.nodeId}`, '/api/machines']) {
    const n = await call(`${server.http.url}${path}`, { from: '127.0.0.11' });
    t.is(n.status, 404, path);
    t.notRegex(n.body, new RegExp(nodeA.nodeId), path);
  }
});

test.serial('a forged signature, another key for a bound MAC and a replay are refused with their status', async (t) => {
  const from = '127.0.0.12';
  const good = report(nodeA, MAC_A);
  const forged: SignedEnvelope = { ...good, payload: { ...good.payload, runmode: 'prod' } };
  const f = await post(forged, from);
  t.is(f.status, 403);
  t.is(JSON.parse(f.body).code, 'bad-signature');

  const intruder = await identityIn('pool-intruder');
  const w = await post(report(intruder, MAC_A), from);
  t.is(w.status, 403);
  t.is(JSON.parse(w.body).code, 'mac-bound-to-another-key');

  t.is((await post(good, from)).status, 200);
  const again = await post(good, from);
  t.is(again.status, 409);
  t.is(JSON.parse(again.body).code, 'replayed');

  const list = JSON.parse((await api('/nodes')).body) as { nodes: { nodeId: string }[] };
  t.deepEqual(list.nodes.map((n) => n.nodeId), [nodeA.nodeId], 'the intruder was not recorded');
});

test.serial('not JSON (415), too large by Content-Length or by a chunked stream (413)', async (t) => {
  const from = '127.0.0.13';
  const url = `${server.http.url}${REPORT_PATH}`;
  const text = await call(url, { method: 'POST', from, headers: { 'content-type': 'text/plain' }, body: '{}' });
  t.is(text.status, 415);
  const big = Buffer.alloc(MAX_REPORT_BYTES + 1, 0x20);
  const sized = await call(url, { method: 'POST', from, headers: { ...json, 'content-length': String(big.length) }, body: big });
  t.is(sized.status, 413);
  const chunked = await call(url, { method: 'POST', from, headers: { ...json, 'transfer-encoding': 'chunked' }, body: big });
  t.is(chunked.status, 413);
  // The server kept serving: a good report from the same address goes through.
  t.is((await post(report(nodeA, MAC_A), from)).status, 200);
});

test.serial('a flood from one address is refused with 429 and Retry-After; another address is not held back', async (t) => {
  const from = '127.0.0.14';
  const statuses: number[] = [];
  for (let i = 0; i <= DEFAULT_REPORT_RATE.burst; i++) statuses.push((await post('{}', from)).status);
  t.deepEqual(statuses.slice(0, DEFAULT_REPORT_RATE.burst), Array(DEFAULT_REPORT_RATE.burst).fill(400));
  const last = await post('{}', from);
  t.is(last.status, 429);
  t.truthy(last.headers['retry-after']);
  t.is((await post(report(nodeA, MAC_A), '127.0.0.15')).status, 200);
});

test.serial('the machine script carries zeroboot.server= with the address the node reached', async (t) => {
  const r = await call(`${server.http.url}/ipxe?mac=${MAC_A.replace(/:/g, '-')}`, { from: '127.0.0.16' });
  t.is(r.status, 200);
  const kernel = r.body.split('\n').find((l) => l.startsWith('imgfetch --name kernel '))!;
  t.true(kernel.split(' ').includes(`zeroboot.server=${server.http.url}`), kernel);
});

test.serial('the registry survives a restart of the server', async (t) => {
  await server.close();
  server = await startBootServer(config(), silentLogger);
  const list = JSON.parse((await api('/nodes')).body) as { nodes: { nodeId: string; macs: string[] }[] };
  t.deepEqual(list.nodes.map((n) => [n.nodeId, n.macs]), [[nodeA.nodeId, [MAC_A]]]);
  // The binding too: another key for that MAC is still refused.
  const w = await post(report(await identityIn('pool-intruder'), MAC_A), '127.0.0.17');
  t.is(w.status, 403);
  const b = await post(report(await identityIn('pool-b'), MAC_B), '127.0.0.17');
  t.is(b.status, 200);
});
