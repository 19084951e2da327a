// Namespace provisioning end to end on the host, without a VM: a real
// `zeroboot serve` process on loopback, a real agent on loop devices (its
// zdbs are real `zeroboot zdb` processes), the management API asking for
// namespaces, and redis-cli writing and reading through the answer. Then the
// refusals on both ports: bad input, a node's poll forged, unsigned,
// replayed or signed for another purpose, and a node answering a task that
// is not its own.
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/run.ts';
import { parseMountinfo } from '../../agent/disks/users.ts';
import { loadOrCreateIdentity, type Identity } from '../../agent/identity.ts';
import { provisionNamespace } from '../../agent/provision-zdb.ts';
import { buildReport, signReport } from '../../agent/report.ts';
import { collectInventory } from '../../agent/inventory/index.ts';
import { capacity } from '../../agent/inventory/capacity.ts';
import { POLL_DOMAIN, REPORT_PATH, RESULT_DOMAIN, signPayload, SIGNING_DOMAIN, TASK_RESULT_PATH, TASKS_PATH } from '../../lib/signed-report.ts';
import { RespClient } from '../../zdb/resp/client.ts';
import { hostAgentOptions } from '../helpers/agent-host.ts';

const ROOT = join(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'agent-provision-'));
const loops: string[] = [];
let agent: Agent | undefined;
let serverProc: ChildProcess | undefined;
let http = '';
let api = '';
let token = '';

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function unmountAll(): void {
  const ours = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of ours.reverse()) execFileSync('umount', [m.mountPoint]);
}

async function manage(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; doc: Record<string, any> }> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, doc: (await res.json()) as Record<string, any> };
}

async function node(path: string, envelope: unknown): Promise<{ status: number; doc: Record<string, any> }> {
  const res = await fetch(`${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
  return { status: res.status, doc: (await res.json()) as Record<string, any> };
}

const stamp = (id: Identity, extra: Record<string, unknown> = {}) => ({ nodeId: id.nodeId, timestamp: Date.now(), nonce: randomBytes(16).toString('hex'), ...extra });

/** redis-cli, one connection, the lines as its commands (as a user pipes them). */
function redisCli(port: number, lines: string[]): string[] {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port)], { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 30_000 }).trim().split('\n');
}

test.before(async () => {
  for (const name of ['a', 'b']) {
    const file = join(dir, `${name}.img`);
    writeFileSync(file, '');
    truncateSync(file, 160 * MiB);
    loops.push(execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim());
  }
  mkdirSync(join(dir, 'state'));
  writeFileSync(
    join(dir, 'zeroboot.yaml'),
    `server:
  address: 127.0.0.1
  stateDir: ${join(dir, 'state')}
  ipxeDir: /usr/lib/ipxe
  dhcp: { mode: off }
  tftp: { enabled: false }
  http: { host: 127.0.0.1, port: 0 }
  management: { host: 127.0.0.1, port: 0, auth: token }
profiles:
  - { name: zos, kernel: zos/vmlinuz, initrd: [], args: { runmode: dev } }
`,
  );
  const proc = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'cli/zeroboot.ts'), 'serve', '--config', join(dir, 'zeroboot.yaml'), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  serverProc = proc;
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d).slice(-4000)));
  const endpoints = await until('the server to listen', async () => {
    if (proc.exitCode !== null) throw new Error(`zeroboot serve exited ${proc.exitCode}: ${err}`);
    const line = out.split('\n').find((l) => l.startsWith('{"listening"'));
    return line ? (JSON.parse(line) as { listening: { http: string; api: string; apiTokenFile: string } }).listening : undefined;
  });
  http = endpoints.http;
  api = endpoints.api;
  token = readFileSync(endpoints.apiTokenFile, 'utf8').trim();

  agent = await Agent.bringUp(await hostAgentOptions(dir, http, loops, 'missing-ssd'));
  await until('the zdbs to answer', async () => ((await Promise.all(agent!.zdbs.map((z) => z.check()))).every(Boolean) ? true : undefined));
  // The agent's own loop: a report, then the long poll for tasks.
  agent.startReporting(60_000);
  await until('the node to register', async () => {
    const r = await manage('GET', `/nodes/${agent!.identity.nodeId}`);
    return r.status === 200 ? true : undefined;
  });
});

test.after.always(async () => {
  await agent?.stop();
  if (serverProc && serverProc.exitCode === null) {
    const gone = new Promise((r) => serverProc!.once('exit', r));
    serverProc.kill('SIGTERM');
    await gone;
  }
  try {
    unmountAll();
  } finally {
    for (const dev of loops) execFileSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('the management API asks for a namespace; redis-cli writes and reads through the answer with its password', async (t) => {
  const id = agent!.identity.nodeId;
  const asked = await manage('POST', `/nodes/${id}/namespaces?wait=30`, { name: 'workload-1', mode: 'user', password: 'hunter22', public: false, maxsize: 8 * MiB });
  t.true(asked.status === 200 || asked.status === 202, JSON.stringify(asked.doc));
  const task = await until('the task to finish', async () => {
    const r = await manage('GET', `/nodes/${id}/namespaces/${asked.doc.id}?wait=30`);
    return r.doc.state === 'pending' ? undefined : r.doc;
  });
  t.is(task.state, 'done', JSON.stringify(task));
  t.like(task, { nodeId: id, request: { name: 'workload-1', mode: 'user', public: false, maxsize: 8 * MiB, password: true }, result: { address: '127.0.0.1', namespace: 'workload-1' } });
  t.false(JSON.stringify(task).includes('hunter22'), 'the password is never echoed');
  const zdb = agent!.zdbs.find((z) => z.spec.disk === task.result.disk)!;
  t.is(task.result.port, zdb.spec.port);

  t.deepEqual(redisCli(task.result.port, ['SELECT workload-1 hunter22', 'SET greeting hello', 'GET greeting']), ['OK', 'greeting', 'hello']);
  t.deepEqual(redisCli(task.result.port, ['SELECT workload-1']), ['Namespace protected and private']);
  t.deepEqual(redisCli(task.result.port, ['SELECT workload-1 wrong']), ['Access denied']);

  const admin = await RespClient.connect({ path: zdb.spec.socket });
  t.teardown(() => admin.close());
  await admin.auth(zdb.spec.adminSecret);
  const info = await admin.command(['NSINFO', 'workload-1']);
  t.regex(info.type === 'bulk' ? String(info.value) : '', new RegExp(`data_limits_bytes: ${8 * MiB}\n`));

  const list = await manage('GET', `/nodes/${id}/namespaces`);
  t.deepEqual(
    list.doc.tasks.map((x: { id: string }) => x.id),
    [asked.doc.id],
  );
});

test.serial('a sequential namespace on a chosen disk; a name taken and a size with no room fail with the reason', async (t) => {
  const id = agent!.identity.nodeId;
  // Loop devices may measure as SSD or HDD on a loaded machine, so there may be one zdb or two: ask for the last.
  const disk = agent!.zdbs.at(-1)!.spec.disk;
  const finish = async (body: unknown) => {
    const a = await manage('POST', `/nodes/${id}/namespaces?wait=30`, body);
    t.is(a.status === 202 || a.status === 200, true, JSON.stringify(a.doc));
    return until('the task to finish', async () => {
      const r = await manage('GET', `/nodes/${id}/namespaces/${a.doc.id}?wait=30`);
      return r.doc.state === 'pending' ? undefined : r.doc;
    });
  };
  const seq = await finish({ name: 'seq-1', mode: 'seq', public: true, maxsize: MiB, disk });
  t.like(seq, { state: 'done', result: { disk, namespace: 'seq-1' } });
  // Sequential: SET with an empty key hands out the id (8 bytes, little-endian 0); public without password: anyone may write.
  t.deepEqual(redisCli(seq.result.port, ['SELECT seq-1', 'DBSIZE']), ['OK', '0']);

  const taken = await finish({ name: 'workload-1', maxsize: MiB });
  t.is(taken.state, 'failed');
  t.regex(taken.error, /^namespace workload-1 already exists on /);

  const huge = await finish({ name: 'huge', maxsize: 10 * 1024 * MiB });
  t.is(huge.state, 'failed');
  t.regex(huge.error, /^no disk has room for 10737418240 bytes \(/);
});

test.serial('a task run twice (its answer lost) makes its namespace once: the journal in the pool finds it again', async (t) => {
  const targets = agent!.zdbs.map((z) => z.spec);
  const taskId = randomBytes(8).toString('hex');
  const req = { name: 'twice', mode: 'user' as const, password: 'pw-twice', public: false, maxsize: MiB };
  const first = await provisionNamespace(taskId, req, targets);
  const second = await provisionNamespace(taskId, req, targets);
  t.deepEqual(second, first);
  // Another task with the same name is refused: the namespace is the first task's.
  await t.throwsAsync(provisionNamespace(randomBytes(8).toString('hex'), req, targets), { message: /^namespace twice already exists on / });
  t.deepEqual(redisCli(first.port, ['SELECT twice pw-twice', 'DBSIZE']), ['OK', '0']);
});

test.serial('bad input on the management port is one clear error; unknown nodes and tasks are 404', async (t) => {
  const id = agent!.identity.nodeId;
  const cases: [unknown, RegExp][] = [
    [{ mode: 'user' }, /^maxsize is required/],
    [{ maxsize: 1, mode: 'fast' }, /^mode must be "user" or "seq"/],
    [{ maxsize: 1, name: '../etc' }, /^name must be 1 to 64 letters/],
    [{ maxsize: 1, name: 'default' }, /^name must be/],
    [{ maxsize: 1, password: '*' }, /^password must be 1 to 63 printable/],
    [{ maxsize: 1, password: 'x'.repeat(64) }, /^password must be/],
    [{ maxsize: 1, public: 'yes' }, /^public must be true or false/],
    [{ maxsize: 1, color: 'red' }, /^unknown field "color"/],
    [[1, 2], /^the body must be a JSON object/],
    ['{not json', /^the body is not JSON/],
  ];
  for (const [body, error] of cases) {
    const r = await manage('POST', `/nodes/${id}/namespaces`, body);
    t.is(r.status, 400, JSON.stringify(body));
    t.regex(r.doc.error, error);
    t.false(r.doc.error.includes('\n'));
  }
  t.is((await manage('POST', `/nodes/${id}/namespaces`, { maxsize: 1, disk: 'sdzz' })).status, 409);
  t.is((await manage('POST', `/nodes/${id}/namespaces?wait=31`, { maxsize: 1 })).status, 400);
  t.is((await manage('POST', `/nodes/${id}/namespaces`, { maxsize: 1 }, { 'content-type': 'text/plain' })).status, 415);
  t.is((await manage('POST', '/nodes/nobody/namespaces', { maxsize: 1 })).status, 404);
  t.is((await manage('GET', `/nodes/${id}/namespaces/0123456789abcdef`)).status, 404);
  t.is((await manage('DELETE', `/nodes/${id}/namespaces`)).status, 405);
  // Without the token, nothing.
  const anon = await fetch(`${api}/nodes/${id}/namespaces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"maxsize":1}' });
  t.is(anon.status, 401);
  // Nothing of this made a task.
  t.deepEqual(
    (await manage('GET', `/nodes/${id}/namespaces`)).doc.tasks.filter((x: { request: { maxsize: number } }) => x.request.maxsize === 1),
    [],
  );
});

test.serial('the node port refuses polls unsigned, forged, replayed, from a stranger or signed as a report, and answers to another node\'s task', async (t) => {
  const me = agent!.identity;
  await mkdirSync(join(dir, 'other'), { recursive: true });
  const other = (await loadOrCreateIdentity([join(dir, 'other')])).identity;
  const stranger = (await loadOrCreateIdentity([])).identity;

  const unsigned = await node(TASKS_PATH, { payload: stamp(me) });
  t.is(unsigned.status, 400);
  t.is(unsigned.doc.code, 'malformed');

  // Another key signing a poll that names this node.
  const forged = signPayload(stamp(me, { waitMs: 0 }), other.privateKey, POLL_DOMAIN);
  t.is((await node(TASKS_PATH, { ...forged, publicKey: me.publicKey.toString('base64') })).doc.code, 'bad-signature');
  t.is((await node(TASKS_PATH, forged)).doc.code, 'node-id-mismatch');

  // A key that never reported cannot poll at all.
  const s = await node(TASKS_PATH, signPayload(stamp(stranger, { waitMs: 0 }), stranger.privateKey, POLL_DOMAIN));
  t.is(s.status, 403);
  t.is(s.doc.code, 'unknown-node');

  // The node's own key, but a report's domain: not a poll.
  t.is((await node(TASKS_PATH, signPayload(stamp(me, { waitMs: 0 }), me.privateKey, SIGNING_DOMAIN))).doc.code, 'bad-signature');

  // A good poll once; the same message again is a replay.
  const good = signPayload(stamp(me, { waitMs: 0 }), me.privateKey, POLL_DOMAIN);
  const first = await node(TASKS_PATH, good);
  t.is(first.status, 200, JSON.stringify(first.doc));
  t.deepEqual(first.doc, { tasks: [] });
  t.is((await node(TASKS_PATH, good)).status, 409);

  // Another registered node answers this node's task: as if there were no such task.
  const inventory = collectInventory({ root: join(ROOT, 'test/fixtures/agent/qemu-storage-uefi') });
  const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, []);
  const reg = await node(REPORT_PATH, signReport(buildReport({ identity: other, inventory, capacity: cap, disks: [], zdbs: [], bootMac: '52:54:00:bb:00:09', runmode: 'dev' }), other));
  t.is(reg.status, 200, JSON.stringify(reg.doc));
  const mine = (await manage('GET', `/nodes/${me.nodeId}/namespaces`)).doc.tasks[0];
  const steal = await node(TASK_RESULT_PATH, signPayload(stamp(other, { taskId: mine.id, ok: false, error: 'mine now' }), other.privateKey, RESULT_DOMAIN));
  t.is(steal.status, 404);
  t.regex(steal.doc.error, /has no task/);
  // And it cannot see the task: its poll is empty, and the task is unchanged.
  t.deepEqual((await node(TASKS_PATH, signPayload(stamp(other, { waitMs: 0 }), other.privateKey, POLL_DOMAIN))).doc, { tasks: [] });
  t.is((await manage('GET', `/nodes/${me.nodeId}/namespaces/${mine.id}`)).doc.state, 'done');
  // The other node runs no zdb: no task is made for it.
  t.is((await manage('POST', `/nodes/${other.nodeId}/namespaces`, { maxsize: 1 })).status, 409);
});
