// The README's main command: `zeroboot demo` boots a QEMU node to the image's
// marker, prints its timeline and leaves nothing behind.
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from '../helpers/netns.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

test('zeroboot demo boots a node to ZEROBOOT-UP, shows every stage, and tears down', async (t) => {
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(BIN, ['demo', '--timeout', '240'], { timeout: 420_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  t.is(out.code, 0, out.stdout + out.stderr);
  t.regex(out.stdout, /up after [\d.]+ s from QEMU start: ZEROBOOT-UP ip=10\.77\.0\.\d+ mac=[0-9a-f:]{17}/);
  const timeline = out.stdout.slice(out.stdout.indexOf('== timeline'));
  for (const kind of ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'http.script', 'http.kernel', 'http.initrd']) {
    t.regex(timeline, new RegExp(`\\s${kind.replace('.', '\\.')}\\s`), kind);
  }
  t.regex(timeline, /http\.kernel\s+path=image\/vmlinuz status=200/);
  const ns = /torn down: namespace (\S+),/.exec(out.stdout)?.[1];
  t.truthy(ns);
  t.false((await sh('ip', ['netns', 'list'])).split('\n').some((l) => l.split(' ')[0] === ns), `namespace ${ns} is gone`);
});
