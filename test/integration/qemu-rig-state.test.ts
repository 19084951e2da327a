// `zeroboot qemu down` against rig state files on disk (no guest is booted):
// a corrupt or foreign file is refused in one line that names it, and a
// stale rig (its processes and namespace gone) is cleaned up.
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function zeroboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('qemu down: a corrupt or foreign state file is refused in one line naming it; a stale rig is cleaned up', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-rig-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const states = path.join(dir, 'states');
  await mkdir(states);
  const bad = path.join(states, 'rig-1.json');

  await writeFile(bad, '{"namespace": "zbt-x", "pids": [1');
  const corrupt = await zeroboot(['qemu', 'down', '--state-dir', states]);
  t.is(corrupt.code, 1);
  t.is(corrupt.stderr.trim().split('\n').length, 1, corrupt.stderr);
  t.regex(corrupt.stderr, new RegExp(`${bad.replace(/[.]/g, '\\.')}: .*remove it by hand`));
  t.notRegex(corrupt.stderr, /\n\s+at /, 'no stack trace');
  t.true(existsSync(bad), 'the file is left for the user to look at');

  await writeFile(bad, '{"hello": "world"}\n');
  const foreign = await zeroboot(['qemu', 'down', '--state-dir', states]);
  t.is(foreign.code, 1);
  t.regex(foreign.stderr, /rig-1\.json: not a rig state; remove it by hand/);

  // A stale rig: its owner and processes are gone (a pid of a process that has exited), its namespace too.
  await rm(bad);
  const gonePid = spawnSync('true').pid!;
  const workDir = await mkdtemp(path.join(tmpdir(), 'zeroboot-rig-test-'));
  t.teardown(() => rm(workDir, { recursive: true, force: true }));
  const stale = path.join(states, 'rig-2.json');
  await writeFile(stale, JSON.stringify({ namespace: `zbt-gone-${process.pid}`, ownerPid: gonePid, pids: [gonePid], workDir, logDir: workDir, startedAt: new Date().toISOString() }));
  const down = await zeroboot(['qemu', 'down', '--state-dir', states]);
  t.is(down.code, 0, down.stderr);
  t.regex(down.stdout, new RegExp(`qemu down: zbt-gone-${process.pid}: nothing was left running`));
  t.false(existsSync(workDir), 'the work directory is removed');
  t.deepEqual(await readdir(states), [], 'the state file is removed');
  const again = await zeroboot(['qemu', 'down', '--state-dir', states]);
  t.regex(again.stdout, /no rig to tear down/);
});
