// The limits of namespace tasks over real HTTP on loopback: the node port
// (long polls held per address and woken by a new task, a closed poll
// giving its place back, the request rate, the message size) and the
// management side (waiting requests, body size). Nodes sign with the
// agent's own code; each test posts from its own 127.0.0.x address.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '../../boot/registry/store.ts';
import { MAX_TASK_MESSAGE_BYTES, reportRequestHandler } from '../../boot/registry/http.ts';
import { TaskBoard } from '../../boot/registry/tasks.ts';
import { PollHolds, type PollLimits } from '../../boot/registry/long-poll.ts';
import { TaskApi, type TaskApiLimits } from '../../boot/registry/task-api.ts';
import { loadOrCreateIdentity, type Identity } from '../../agent/identity.ts';
import { buildReport, signReport } from '../../agent/report.ts';
import { collectInventory } from '../../agent/inventory/index.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import { POLL_DOMAIN, REPORT_PATH, signPayload, TASKS_PATH } from '../../lib/signed-report.ts';
import type { RateLimitOptions } from '../../boot/registry/rate-limit.ts';
import { httpCall, type HttpAnswer } from '../helpers/http-call.ts';

const inventory = collectInventory({ root: join(import.meta.dirname, '../fixtures/agent/qemu-storage-uefi') });
const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, []);
const ZDBS = [{ disk: 'sdb', port: 9900, socket: '/run/zdb.sock', healthy: true, restarts: 0 }];

interface Rig {
  registry: Registry;
  board: TaskBoard;
  holds: PollHolds;
  node: string;
  manage: string;
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

async function rig(t: import('ava').ExecutionContext, opts: { poll?: Partial<PollLimits>; taskRate?: Partial<RateLimitOptions>; api?: Partial<TaskApiLimits> } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'registry-tasks-'));
  const registry = await Registry.open(dir);
  const board = new TaskBoard();
  const holds = new PollHolds(board, opts.poll);
  const nodeServer = createServer(reportRequestHandler(registry, { tasks: { board, holds }, ...(opts.taskRate ? { taskRate: opts.taskRate } : {}) }));
  const taskApi = new TaskApi(board, registry, opts.api);
  const manageServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    void taskApi.serve(req, res, url.pathname, url.searchParams);
  });
  const node = await listen(nodeServer);
  const manage = await listen(manageServer);
  t.teardown(async () => {
    holds.close();
    nodeServer.closeAllConnections();
    manageServer.closeAllConnections();
    await new Promise((r) => nodeServer.close(r));
    await new Promise((r) => manageServer.close(r));
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { registry, board, holds, node, manage };
}

// Node and management calls here are JSON POSTs unless told otherwise.
const call = (url: string, opts: { from: string; method?: string; body?: string; type?: string; signal?: AbortSignal; chunked?: boolean }) =>
  httpCall(url, { ...opts, method: opts.method ?? 'POST', headers: { 'content-type': opts.type ?? 'application/json' } });

let n = 0;
async function registered(r: Rig, from: string): Promise<Identity> {
  const { identity } = await loadOrCreateIdentity([]);
  // A node with disks: diskless ones are not kept on disk, but are registered all the same.
  const mac = `52:54:00:cc:00:${(++n).toString(16).padStart(2, '0')}`;
  const a = await call(`${r.node}${REPORT_PATH}`, { from, body: JSON.stringify(signReport(buildReport({ identity, inventory, capacity: cap, disks: [], zdbs: ZDBS, bootMac: mac, runmode: 'dev' }), identity)) });
  if (a.status !== 200) throw new Error(`report refused: ${a.body}`);
  return identity;
}

const poll = (id: Identity, waitMs: number) => JSON.stringify(signPayload({ nodeId: id.nodeId, timestamp: Date.now(), nonce: randomBytes(16).toString('hex'), waitMs }, id.privateKey, POLL_DOMAIN));

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a held poll is answered by a task made through the management API; a poll whose client left gives its place back', async (t) => {
  // Held far longer than the wait below: only the closed connection can give the place back in time.
  const r = await rig(t, { poll: { holdMs: 120_000 } });
  const from = '127.0.0.31';
  const a = await registered(r, from);
  const held = call(`${r.node}${TASKS_PATH}`, { from, body: poll(a, 60_000) });
  await until('the poll to be held', () => r.holds.held === 1);
  const made = await call(`${r.manage}/nodes/${a.nodeId}/namespaces`, { from: '127.0.0.1', body: JSON.stringify({ name: 'woken', maxsize: 1, password: 'pw' }) });
  t.is(made.status, 202, made.body);
  const answer = await held;
  t.is(answer.status, 200);
  const tasks = JSON.parse(answer.body).tasks;
  t.is(tasks.length, 1);
  // The node, and only the node, gets the password it is to set.
  t.like(tasks[0], { id: JSON.parse(made.body).id, kind: 'namespace', request: { name: 'woken', password: 'pw', maxsize: 1, mode: 'user', public: false } });

  const gone = new AbortController();
  const left = call(`${r.node}${TASKS_PATH}`, { from, body: poll(a, 60_000), signal: gone.signal }).catch(() => undefined);
  // The task above is still pending (no answer yet), so this poll is answered at once: finish it first.
  await left;
  r.board.finish(a.nodeId, tasks[0].id, { ok: false, error: 'test' }, Date.now());
  const again = call(`${r.node}${TASKS_PATH}`, { from, body: poll(a, 60_000), signal: gone.signal }).catch(() => undefined);
  await until('the poll to be held', () => r.holds.held === 1);
  gone.abort();
  await again;
  await until('the closed poll to give its place back', () => r.holds.held === 0);
  t.pass();
});

test('held polls per address are capped on the node port, before a body is read', async (t) => {
  const r = await rig(t, { poll: { maxPerAddress: 1 } });
  const from = '127.0.0.32';
  const a = await registered(r, from);
  const b = await registered(r, from);
  const held = call(`${r.node}${TASKS_PATH}`, { from, body: poll(a, 60_000) });
  await until('the poll to be held', () => r.holds.held === 1);
  const refused = await call(`${r.node}${TASKS_PATH}`, { from, body: poll(b, 60_000) });
  t.is(refused.status, 429, refused.body);
  t.regex(JSON.parse(refused.body).error, /holds 1 polls already/);
  // Another address is not affected.
  const c = await registered(r, '127.0.0.33');
  const other = call(`${r.node}${TASKS_PATH}`, { from: '127.0.0.33', body: poll(c, 60_000) });
  await until('the second poll to be held', () => r.holds.held === 2);
  r.holds.close();
  t.deepEqual([(await held).status, (await other).status], [200, 200]);
});

test('a stranger holds no poll: an unknown key is refused at once', async (t) => {
  const r = await rig(t);
  const { identity } = await loadOrCreateIdentity([]);
  const answers = await Promise.all([1, 2, 3].map(() => call(`${r.node}${TASKS_PATH}`, { from: '127.0.0.34', body: poll(identity, 60_000) })));
  t.deepEqual(
    answers.map((a) => a.status),
    [403, 403, 403],
  );
  t.is(r.holds.held, 0);
});

test('polls and results are rate-limited per address, with Retry-After', async (t) => {
  const r = await rig(t, { taskRate: { burst: 3, perSecond: 0.01 } });
  const from = '127.0.0.35';
  const statuses: number[] = [];
  let last: HttpAnswer | undefined;
  for (let i = 0; i < 4; i++) {
    last = await call(`${r.node}${TASKS_PATH}`, { from, body: '{}' });
    statuses.push(last.status);
  }
  t.deepEqual(statuses, [400, 400, 400, 429]);
  t.truthy(last!.headers['retry-after']);
  // Reports have their own budget.
  t.is((await call(`${r.node}${REPORT_PATH}`, { from, body: '{}' })).status, 400);
});

test('a poll or result larger than the cap is refused with 413', async (t) => {
  const r = await rig(t);
  const big = await call(`${r.node}${TASKS_PATH}`, { from: '127.0.0.36', body: JSON.stringify({ pad: 'x'.repeat(MAX_TASK_MESSAGE_BYTES) }) });
  t.is(big.status, 413);
  t.is((await call(`${r.node}${TASKS_PATH}`, { from: '127.0.0.36', body: JSON.stringify({ pad: 'x'.repeat(MAX_TASK_MESSAGE_BYTES) }), chunked: true })).status, 413);
  t.is((await call(`${r.node}${TASKS_PATH}`, { from: '127.0.0.36', body: '{}', type: 'text/plain' })).status, 415);
});

test('waiting management requests are capped; a request body is capped', async (t) => {
  const r = await rig(t, { api: { maxWaiters: 1, maxBodyBytes: 256 } });
  const a = await registered(r, '127.0.0.37');
  const made = await call(`${r.manage}/nodes/${a.nodeId}/namespaces`, { from: '127.0.0.1', body: JSON.stringify({ maxsize: 1 }) });
  const id = JSON.parse(made.body).id;
  const waiting = call(`${r.manage}/nodes/${a.nodeId}/namespaces/${id}?wait=30`, { from: '127.0.0.1', method: 'GET' });
  await new Promise((res) => setTimeout(res, 200));
  const second = await call(`${r.manage}/nodes/${a.nodeId}/namespaces/${id}?wait=30`, { from: '127.0.0.1', method: 'GET' });
  t.is(second.status, 503, second.body);
  t.regex(JSON.parse(second.body).error, /waiting for tasks already/);
  // No task is made by a refused POST either.
  const before = r.board.size;
  t.is((await call(`${r.manage}/nodes/${a.nodeId}/namespaces?wait=5`, { from: '127.0.0.1', body: JSON.stringify({ maxsize: 1 }) })).status, 503);
  t.is(r.board.size, before);
  t.is((await call(`${r.manage}/nodes/${a.nodeId}/namespaces/${id}`, { from: '127.0.0.1', method: 'GET' })).status, 200);
  // The waiter is answered when the task finishes.
  r.board.finish(a.nodeId, id, { ok: false, error: 'no room' }, Date.now());
  const w = await waiting;
  t.like(JSON.parse(w.body), { state: 'failed', error: 'no room' });
  const body = JSON.stringify({ maxsize: 1, name: 'x'.repeat(300) });
  t.is((await call(`${r.manage}/nodes/${a.nodeId}/namespaces`, { from: '127.0.0.1', body })).status, 413);
  t.is((await call(`${r.manage}/nodes/${a.nodeId}/namespaces`, { from: '127.0.0.1', body, chunked: true })).status, 413);
});
