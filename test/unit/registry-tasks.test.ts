// The task board, the held polls and the namespace request check, with the
// clock passed in: every limit refuses at its bound and not before.
import test from 'ava';
import { parseNamespaceRequest, TaskInputError } from '../../boot/registry/namespace-request.ts';
import { TaskBoard, taskView, type Task } from '../../boot/registry/tasks.ts';
import { PollHolds } from '../../boot/registry/long-poll.ts';
import { Refusal } from '../../boot/registry/refusal.ts';

const req = (over: Record<string, unknown> = {}) => parseNamespaceRequest({ maxsize: 1024, ...over });
const T0 = 1_000_000;

test('a request gets its defaults; the name is the task\'s when not given', (t) => {
  t.deepEqual(req(), { mode: 'user', public: false, maxsize: 1024 });
  const board = new TaskBoard();
  const task = board.create('n1', req(), T0);
  t.regex(task.id, /^[0-9a-f]{16}$/);
  t.is(task.request.name, `ns-${task.id}`);
  t.is(task.state, 'pending');
});

test('every field is checked with one line naming it', (t) => {
  const bad: [unknown, RegExp][] = [
    [null, /^the body must be a JSON object/],
    [{ maxsize: 0 }, /^maxsize is required/],
    [{ maxsize: 1.5 }, /^maxsize is required/],
    [{ maxsize: 2 ** 53 }, /^maxsize is required/],
    [{ maxsize: 1, name: '' }, /^name must be/],
    [{ maxsize: 1, name: 'a/b' }, /^name must be/],
    [{ maxsize: 1, name: 'x'.repeat(65) }, /^name must be/],
    [{ maxsize: 1, password: 'has space' }, /^password must be/],
    [{ maxsize: 1, password: '' }, /^password must be/],
    [{ maxsize: 1, disk: '/dev/sda' }, /^disk must be a disk name/],
    [{ maxsize: 1, mode: 'SEQ' }, /^mode must be/],
    [{ maxsize: 1, constructor: 1 }, /^unknown field "constructor"/],
  ];
  for (const [body, msg] of bad) {
    const e = t.throws(() => parseNamespaceRequest(body), { instanceOf: TaskInputError }, JSON.stringify(body));
    t.regex(e!.message, msg);
  }
  t.deepEqual(parseNamespaceRequest({ name: 'a.b-c_1', mode: 'seq', password: 'x'.repeat(63), public: true, maxsize: 2 ** 53 - 1, disk: 'nvme0n1' }), {
    name: 'a.b-c_1',
    mode: 'seq',
    password: 'x'.repeat(63),
    public: true,
    maxsize: 2 ** 53 - 1,
    disk: 'nvme0n1',
  });
});

test('pending tasks per node are capped; another node is not affected; a finished task frees its place', (t) => {
  const board = new TaskBoard({ perNodePending: 3 });
  const made = [1, 2, 3].map((i) => board.create('n1', req({ name: `a${i}` }), T0));
  const e = t.throws(() => board.create('n1', req({ name: 'a4' }), T0), { instanceOf: Refusal });
  t.is(e!.status, 429);
  t.regex(e!.message, /already has 3 pending tasks/);
  t.notThrows(() => board.create('n2', req({ name: 'b1' }), T0));
  t.is(board.finish('n1', made[0].id, { ok: false, error: 'x' }, T0).status, 'finished');
  t.notThrows(() => board.create('n1', req({ name: 'a4' }), T0));
});

test('a second pending task for the same name on the same node is refused', (t) => {
  const board = new TaskBoard();
  const first = board.create('n1', req({ name: 'same' }), T0);
  const e = t.throws(() => board.create('n1', req({ name: 'same' }), T0), { instanceOf: Refusal });
  t.is(e!.status, 409);
  t.regex(e!.message, new RegExp(first.id));
  t.notThrows(() => board.create('n2', req({ name: 'same' }), T0));
});

test('tasks in all are capped: finished ones make room (oldest first), pending ones never', (t) => {
  const board = new TaskBoard({ total: 3, perNodePending: 10 });
  const a = board.create('n1', req(), T0);
  board.create('n2', req(), T0);
  board.create('n3', req(), T0);
  const e = t.throws(() => board.create('n4', req(), T0), { instanceOf: Refusal });
  t.is(e!.status, 503);
  board.finish('n1', a.id, { ok: true, result: { address: '10.0.0.5', port: 9900, namespace: a.request.name, disk: 'sdb' } }, T0);
  t.notThrows(() => board.create('n4', req(), T0));
  t.is(board.size, 3);
  t.is(board.get(a.id, T0), undefined);
});

test('a pending task fails after pendingMs; a finished one is forgotten after keepMs', (t) => {
  const board = new TaskBoard({ pendingMs: 1000, keepMs: 5000 });
  const task = board.create('n1', req(), T0);
  t.is(board.get(task.id, T0 + 1000)!.state, 'pending');
  const failed = board.get(task.id, T0 + 1001)!;
  t.is(failed.state, 'failed');
  t.regex(failed.error!, /did not finish the task within 1 s/);
  t.truthy(board.get(task.id, T0 + 6001));
  t.is(board.get(task.id, T0 + 6002), undefined);
});

test('a node finishes only its own tasks, once; a retried answer changes nothing', (t) => {
  const board = new TaskBoard();
  const task = board.create('n1', req(), T0);
  t.deepEqual(board.finish('n2', task.id, { ok: false, error: 'not mine' }, T0), { status: 'unknown' });
  t.is(board.get(task.id, T0)!.state, 'pending');
  const result = { address: '10.0.0.5', port: 9900, namespace: task.request.name, disk: 'sdb' };
  t.is(board.finish('n1', task.id, { ok: true, result }, T0).status, 'finished');
  const again = board.finish('n1', task.id, { ok: false, error: 'late' }, T0);
  t.is(again.status, 'already');
  t.like(board.get(task.id, T0), { state: 'done', result });
});

test('the view never holds the password', (t) => {
  const board = new TaskBoard();
  const v = taskView(board.create('n1', req({ password: 'sekrit' }), T0));
  t.false(JSON.stringify(v).includes('sekrit'));
  t.like(v, { request: { password: true } });
});

function holdsWith(limits: ConstructorParameters<typeof PollHolds>[1]) {
  const board = new TaskBoard();
  const holds = new PollHolds(board, limits, () => T0);
  const answers: { who: string; tasks: Task[] }[] = [];
  const poll = (nodeId: string, address: string, waitMs = 60_000) => holds.poll(nodeId, address, waitMs, (tasks) => answers.push({ who: nodeId, tasks }));
  return { board, holds, answers, poll };
}

test('a held poll is answered by the next task for its node, and only its node', (t) => {
  const { board, holds, answers, poll } = holdsWith({});
  poll('n1', '10.0.0.1');
  poll('n2', '10.0.0.2');
  t.is(holds.held, 2);
  const task = board.create('n1', req(), T0);
  t.deepEqual(answers, [{ who: 'n1', tasks: [task] }]);
  t.is(holds.held, 1);
  t.is(task.deliveries, 1);
  holds.close();
  t.deepEqual(answers[1], { who: 'n2', tasks: [] });
});

test('a poll with tasks waiting is answered at once, in batches', (t) => {
  const { board, answers, poll, holds } = holdsWith({ batch: 2 });
  for (let i = 0; i < 3; i++) board.create('n1', req(), T0);
  poll('n1', '10.0.0.1');
  t.is(answers[0].tasks.length, 2);
  t.is(holds.held, 0);
});

test('one held poll per node: a new one answers the older, empty', (t) => {
  const { holds, answers, poll } = holdsWith({});
  poll('n1', '10.0.0.1');
  poll('n1', '10.0.0.1');
  t.is(holds.held, 1);
  t.deepEqual(answers, [{ who: 'n1', tasks: [] }]);
  holds.close();
});

test('held polls per address are capped; a cancelled poll frees its place', (t) => {
  const { holds, poll } = holdsWith({ maxPerAddress: 2 });
  poll('n1', '10.0.0.9');
  const cancel = poll('n2', '10.0.0.9');
  const e = t.throws(() => poll('n3', '10.0.0.9'), { instanceOf: Refusal });
  t.is(e!.status, 429);
  t.throws(() => holds.checkAddress('10.0.0.9'), { instanceOf: Refusal });
  t.notThrows(() => poll('n4', '10.0.0.10'));
  cancel();
  t.notThrows(() => poll('n3', '10.0.0.9'));
  holds.close();
});

test('held polls in all are capped', (t) => {
  const { holds, poll } = holdsWith({ maxHeld: 2 });
  poll('n1', '10.0.0.1');
  poll('n2', '10.0.0.2');
  const e = t.throws(() => poll('n3', '10.0.0.3'), { instanceOf: Refusal });
  t.is(e!.status, 503);
  holds.close();
});

test('a held poll ends empty after the hold time, whatever the node asked for', async (t) => {
  const { answers, poll, holds } = holdsWith({ holdMs: 50 });
  const started = Date.now();
  poll('n1', '10.0.0.1', 60_000);
  await new Promise((r) => setTimeout(r, 2_000));
  t.deepEqual(answers, [{ who: 'n1', tasks: [] }]);
  t.is(holds.held, 0);
  t.true(Date.now() - started >= 50);
});
