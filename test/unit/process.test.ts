import test from 'ava';
import { spawn } from 'node:child_process';
import { isAlive, isRunning, killPid, runCommand, sh, waitForOutput, waitUntilGone, waitUntilGoneSync } from '../../lib/process.ts';

test('sh returns stdout and rejects on failure; runCommand always resolves with code and output', async (t) => {
  t.is(await sh('printf', ['%s', 'hi']), 'hi');
  await t.throwsAsync(sh('false', []));
  t.deepEqual(await runCommand('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'in' }), { stdout: 'in', stderr: 'err\n', code: 3 });
  const started = Date.now();
  const slow = await runCommand('sleep', ['30'], { timeout: 200 });
  t.is(slow.code, 128, 'killed by the timeout');
  t.true(Date.now() - started < 20_000);
});

test('waitForOutput resolves on the pattern, rejects when the process exits first; killPid by pid', async (t) => {
  const child = spawn('sh', ['-c', 'echo ready on 1234; exec sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void killPid(child.pid!));
  t.is(await waitForOutput(child, /ready on \d+/, 30_000), 'ready on 1234');
  t.true(isAlive(child.pid!));
  const exited = new Promise((r) => child.once('exit', r));
  t.true(killPid(child.pid!));
  await exited;
  t.false(isAlive(child.pid!));
  t.false(killPid(child.pid!), 'a process already gone is no error');
  const quitter = spawn('sh', ['-c', 'echo bye; exit 2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await t.throwsAsync(waitForOutput(quitter, /never/, 30_000), { message: /exited \(2\) before printing/ });
});

test('isRunning: a zombie does not run though its pid exists; waitUntilGone waits for a killed process to be gone, and gives those still running', async (t) => {
  // The shell starts a short sleep, then becomes a long one that never reaps it: the short one ends a zombie.
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => void killPid(parent.pid!));
  const zombie = Number(await waitForOutput(parent, /^\d+/m, 30_000));
  t.deepEqual(await waitUntilGone([zombie], 30_000), [], 'a zombie is gone');
  t.true(isAlive(zombie), 'its pid still exists');
  t.false(isRunning(zombie));
  t.true(isRunning(parent.pid!));
  t.deepEqual(await waitUntilGone([parent.pid!], 100), [parent.pid!], 'still running after the wait');
  t.true(killPid(parent.pid!));
  // No waiting for Node to reap it: gone as soon as it has exited.
  t.deepEqual(await waitUntilGone([parent.pid!], 30_000), []);
  t.false(isRunning(parent.pid!));
  t.false(isRunning(2 ** 22 + 1), 'no such pid');
});

test('waitUntilGoneSync: the same wait for exit handlers, without the event loop', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => void killPid(child.pid!));
  await new Promise((r) => child.once('spawn', r));
  const started = Date.now();
  t.deepEqual(waitUntilGoneSync([child.pid!], 200), [child.pid!]);
  t.true(Date.now() - started >= 200, 'it waited the whole bound');
  t.true(killPid(child.pid!));
  // Node cannot reap it while this blocks: gone is exited (a zombie), which the wait sees.
  t.deepEqual(waitUntilGoneSync([child.pid!], 30_000), []);
});
