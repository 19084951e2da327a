// `zeroboot qemu up` as a person at a shell runs it: the CLI builds the rig,
// boots a VM from a hardware profile to the image's marker, exits once it is
// up (--until-up) and leaves no namespace, process or state file behind.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultImage } from '../../harness/qemu-image.ts';
import { sh } from '../helpers/netns.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function run(args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

test('qemu up <profile> --until-up boots the VM to ZEROBOOT-UP through the CLI and tears everything down', async (t) => {
  // The command's own 15 minutes, not ava's 5 between results: guest files run two at a time.
  t.timeout(16 * 60_000);
  const image = await defaultImage();
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-qemu-up-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logDir = path.join(dir, 'logs');
  const stateDir = path.join(dir, 'state');
  const before = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
  const r = await run(
    ['qemu', 'up', 'small-bios', '--image', image, '--poweroff', '--until-up', '--timeout', '600', '--accel', 'tcg', '--subnet', '10.79.0.0/24', '--log-dir', logDir, '--state-dir', stateDir],
    900_000,
  );
  t.is(r.code, 0, r.out);
  t.regex(r.out, /ZEROBOOT-UP/);
  // the console log the help promises, holding the marker too
  const consoles = readdirSync(logDir).filter((f) => f.includes('small-bios'));
  t.true(consoles.length > 0, readdirSync(logDir).join(', '));
  // Its own namespace, by the name it printed: guest files run two at a time, so another file's rig may be up meanwhile.
  const ns = /torn down: namespace (\S+),/.exec(r.out)?.[1];
  t.truthy(ns, r.out);
  t.false(before.includes(ns!), `${ns} was there before`);
  const after = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
  t.false(after.includes(ns!), `no namespace left behind: ${ns}`);
  t.false(existsSync(stateDir) && readdirSync(stateDir).length > 0, 'no rig state left for qemu down');
});

test('qemu up refuses an unknown profile in one line, before creating anything', async (t) => {
  const r = await run(['qemu', 'up', 'no-such-profile', '--accel', 'tcg'], 60_000);
  t.not(r.code, 0);
  t.is(r.out.trim().split('\n').length, 1, r.out);
  t.regex(r.out, /no-such-profile/);
});
