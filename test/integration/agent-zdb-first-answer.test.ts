// A zdb that has not answered its first PING yet is still starting (a large
// index on a slow disk, or four zdbs starting at once on a slow node): the
// supervisor leaves it for firstAnswerMs, and only then kills it as hung.
// The "zdb" is `sleep`, which never listens.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZdbSupervisor } from '../../agent/zdb-supervisor.ts';

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a zdb that never answered is not killed before firstAnswerMs, and is killed as hung after it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-zdb-first-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // `sh -c 'exec sleep 60' zdb --protect ...`: the supervisor's arguments land in $0.. and are ignored.
  const sup = new ZdbSupervisor(
    { disk: 'sdz', dir, port: 1, socket: join(dir, 'none.sock'), adminSecret: '0'.repeat(32) },
    { command: ['sh', '-c', 'exec sleep 60'], healthIntervalMs: 50, pingTimeoutMs: 50, unhealthyLimit: 2, startGraceMs: 0, firstAnswerMs: 1500, baseDelayMs: 10_000 },
  );
  t.teardown(() => sup.stop(100));
  const started = Date.now();
  sup.start();
  const pid = sup.pid;
  t.truthy(pid);
  await new Promise((r) => setTimeout(r, 1000));
  t.is(sup.pid, pid, 'still starting: left alone');
  t.is(sup.health().lastExit, undefined);
  await until('the kill of a process that never answered', () => sup.health().lastExit !== undefined, 20_000);
  t.regex(sup.health().lastExit!, /SIGKILL/);
  t.true(Date.now() - started >= 1500, 'not before firstAnswerMs');
});
