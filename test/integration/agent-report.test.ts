// A signed report from the agent's code to the registry's, over real HTTP on
// loopback: accepted, retried through server errors with backoff, and a
// rejection (a MAC bound to another key) is not retried.
import test from 'ava';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectInventory } from '../../agent/inventory/index.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import { loadOrCreateIdentity } from '../../agent/identity.ts';
import { buildReport, ReportRejectedError, sendReport, signReport } from '../../agent/report.ts';
import { Registry } from '../../boot/registry/store.ts';
import { reportRequestHandler } from '../../boot/registry/http.ts';

const FIX = join(import.meta.dirname, '../fixtures/agent');

async function serve(registry: Registry, failFirst: number): Promise<{ url: string; server: Server; hits: () => number }> {
  let hits = 0;
  const handle = reportRequestHandler(registry);
  const server = createServer((req, res) => {
    if (++hits <= failFirst) return void res.writeHead(503).end('{"error":"busy"}');
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, server, hits: () => hits };
}

test('the storage-uefi node registers through two server errors; its report carries inventory and capacity', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const registry = await Registry.open(join(dir, 'state'));
  const { url, server, hits } = await serve(registry, 2);
  t.teardown(() => server.close());
  const inventory = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
  const { identity } = await loadOrCreateIdentity([]);
  const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, inventory.disks.map((d) => ({ sizeBytes: d.sizeBytes, type: d.rotational ? 'hdd' : 'ssd' })));
  const delays: number[] = [];
  const make = () => signReport(buildReport({ identity, inventory, capacity: cap, disks: [], zdbs: [], bootMac: '52:54:00:00:01:02', runmode: 'dev' }), identity);
  const r = await sendReport(url, make, { baseDelayMs: 100, random: () => 0.5, sleep: async (ms) => void delays.push(ms) });
  t.is(r.attempts, 3);
  t.deepEqual(delays, [50, 100], 'full jitter over a doubling ceiling');
  t.deepEqual(r.response, { nodeId: identity.nodeId, firstContact: true });
  t.is(hits(), 3);
  const rec = registry.get(identity.nodeId)!;
  t.deepEqual(rec.macs, ['52:54:00:00:01:02']);
  t.like(rec.lastReport, { diskless: true, capacity: { cru: 2, sru: 16 * 1024 ** 3, hru: 128 * 1024 ** 3 } });
  // diskless: nothing written to the state directory
  t.throws(() => readFileSync(join(dir, 'state', 'nodes.json')));
});

test('a rejection is final: no retry', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pool = join(dir, 'pool');
  const registry = await Registry.open(join(dir, 'state'));
  const { url, server, hits } = await serve(registry, 0);
  t.teardown(() => server.close());
  const inventory = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
  const cap = capacity(2, inventory.memoryBytes, []);
  const send = async (p: string) => {
    (await import('node:fs')).mkdirSync(p, { recursive: true });
    const { identity } = await loadOrCreateIdentity([p]);
    return sendReport(url, () => signReport(buildReport({ identity, inventory, capacity: cap, disks: [], zdbs: [], runmode: 'prod' }), identity), { sleep: async () => undefined });
  };
  t.like(await send(pool), { attempts: 1 });
  // Another machine claiming the same MAC with its own disk-kept key.
  const e = await t.throwsAsync(send(join(dir, 'other-pool')), { instanceOf: ReportRejectedError });
  t.is(e!.status, 403);
  t.regex(e!.message, /belongs to node/);
  t.is(hits(), 2);
});

test('no server: a clear error after the attempts', async (t) => {
  const { identity } = await loadOrCreateIdentity([]);
  const inventory = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
  const make = () => signReport(buildReport({ identity, inventory, capacity: capacity(1, 1, []), disks: [], zdbs: [], runmode: 'prod' }), identity);
  await t.throwsAsync(sendReport('http://127.0.0.1:9', make, { attempts: 2, sleep: async () => undefined }), { message: /no answer from http:\/\/127.0.0.1:9\/api\/node\/report after 2 attempts/ });
});

test('the request handler: wrong path or method, an oversized body cut off', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { url, server } = await serve(await Registry.open(dir), 0);
  t.teardown(() => server.close());
  t.is((await fetch(`${url}/elsewhere`, { method: 'POST', body: '{}' })).status, 404);
  t.is((await fetch(`${url}/api/node/report`)).status, 405);
  const json = { 'content-type': 'application/json' };
  t.is((await fetch(`${url}/api/node/report`, { method: 'POST', headers: json, body: 'x'.repeat(600 * 1024) }).catch(() => ({ status: 413 }))).status, 413);
  t.is((await fetch(`${url}/api/node/report`, { method: 'POST', body: '{}' })).status, 415);
  const bad = await fetch(`${url}/api/node/report`, { method: 'POST', headers: json, body: '{"payload":{},"publicKey":"","signature":""}' });
  t.is(bad.status, 400);
});

test('a server that never answers, or answers without end: each attempt ends, with the reason', async (t) => {
  const { identity } = await loadOrCreateIdentity([]);
  const inventory = collectInventory({ root: join(FIX, 'qemu-storage-uefi') });
  const make = () => signReport(buildReport({ identity, inventory, capacity: capacity(1, 1, []), disks: [], zdbs: [], runmode: 'prod' }), identity);
  const silent = createServer(() => undefined);
  const endless = createServer((_req, res) => {
    res.writeHead(200);
    const more = () => void (res.write(Buffer.alloc(64 * 1024)) ? setImmediate(more) : res.once('drain', more));
    more();
  });
  for (const s of [silent, endless]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.teardown(() => {
      s.closeAllConnections();
      s.close();
    });
  }
  const at = (s: Server) => `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  await t.throwsAsync(sendReport(at(silent), make, { attempts: 1, timeoutMs: 500 }), { message: /after 1 attempts \(last: no answer from .* within 500 ms\)/ });
  await t.throwsAsync(sendReport(at(endless), make, { attempts: 1, timeoutMs: 30_000 }), { message: /after 1 attempts \(last: .* answered more than 1048576 bytes\)/ });
});
