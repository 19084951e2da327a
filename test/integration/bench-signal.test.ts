// A benchmark stopped by Ctrl-C or `timeout` leaves nothing behind: its
// namespaces, the processes in them and its temporary folders are removed
// on the signal (harness/remove-on-signal.ts), and it exits as killed by it.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning, waitForOutput } from '../../lib/process.ts';

const ROOT = join(import.meta.dirname, '../..');
const exitOf = (child: ReturnType<typeof spawn>) => new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
const namespaces = (prefix: string) => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : []);

for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
  test(`${signal}: the namespaces, the process in them and the folder are removed, exit ${code}`, async (t) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'test/helpers/remove-on-signal-child.ts')], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => child.kill('SIGKILL'));
    const line = await waitForOutput(child, /\{.*\}\n/, 60_000);
    const made = JSON.parse(/\{.*\}/.exec(line)![0]) as { dir: string; namespaces: string[]; pids: number[] };
    t.is(made.namespaces.length, 2);
    t.true(made.pids.length > 0);
    for (const n of made.namespaces) t.true(existsSync(`/run/netns/${n}`));
    const exited = exitOf(child);
    child.kill(signal);
    t.is(await exited, code);
    for (const n of made.namespaces) t.false(existsSync(`/run/netns/${n}`), `${n} is gone`);
    for (const pid of made.pids) t.false(isRunning(pid), `pid ${pid} is gone`);
    t.false(existsSync(made.dir), 'the folder is gone');
  });
}

test('bench/dhcp-flood.ts killed by SIGTERM mid-run leaves no namespace and no folder', async (t) => {
  const before = new Set(namespaces('zbf-'));
  const folders = () => readdirSync(tmpdir()).filter((f) => f.startsWith('zb-bench-flood-'));
  const foldersBefore = new Set(folders());
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'bench/dhcp-flood.ts')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  await waitForOutput(child, /server RSS at start/, 120_000);
  const made = namespaces('zbf-').filter((n) => !before.has(n));
  t.true(made.length >= 2, `the bench made its namespaces: ${made.join(', ')}`);
  const exited = exitOf(child);
  child.kill('SIGTERM');
  t.is(await exited, 143);
  t.deepEqual(namespaces('zbf-').filter((n) => !before.has(n)), [], 'no namespace left');
  t.deepEqual(folders().filter((f) => !foldersBefore.has(f)), [], 'no folder left');
});
