import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function zeroboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-cli-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('help for the tool and for each command', async (t) => {
  const top = await zeroboot(['--help']);
  t.is(top.code, 0);
  for (const cmd of ['serve', 'image', 'qemu', 'demo']) t.regex(top.stdout, new RegExp(`^  ${cmd} `, 'm'));
  for (const cmd of ['serve', 'demo', 'image', 'qemu']) {
    const r = await zeroboot([cmd, '--help']);
    t.is(r.code, 0, cmd);
    t.regex(r.stdout, new RegExp(`Usage: zeroboot ${cmd}`));
  }
});

const oneLine = (t: { is: (a: unknown, b: unknown, m?: string) => void; regex: (s: string, r: RegExp) => void }, r: { stderr: string }, re: RegExp) => {
  t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  t.regex(r.stderr, re);
};

test('bad arguments: one clear line, exit 2, no stack trace', async (t) => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [['serve', '--bogus'], /serve: Unknown option '--bogus'/],
    [['serve', '--dhcp', 'sometimes', '--address', '127.0.0.1'], /--dhcp must be full, proxy or off/],
    [['serve', '--http-port', 'x', '--address', '127.0.0.1'], /--http-port must be an integer/],
    [['serve'], /give --interface IF or --address IP/],
    [['serve', 'extra'], /unexpected argument "extra"/],
  ];
  for (const [args, re] of cases) {
    const r = await zeroboot(args);
    t.is(r.code, 2, args.join(' '));
    oneLine(t, r, re);
    t.notRegex(r.stderr, /\n\s+at /);
  }
});

test('bad configuration: one line naming the problem, exit 1', async (t) => {
  const bad = path.join(dir, 'bad.yaml');
  await writeFile(bad, 'server: [unclosed');
  const r1 = await zeroboot(['serve', '--config', bad]);
  t.is(r1.code, 1);
  oneLine(t, r1, /not valid YAML/);
  const r2 = await zeroboot(['serve', '--config', path.join(dir, 'missing.yaml')]);
  t.is(r2.code, 1);
  oneLine(t, r2, /cannot read .*missing\.yaml: ENOENT/);
  const noPool = path.join(dir, 'nopool.yaml');
  await writeFile(noPool, 'server: { address: 127.0.0.1, dhcp: { mode: full } }\n');
  const r3 = await zeroboot(['serve', '--config', noPool]);
  t.is(r3.code, 1);
  oneLine(t, r3, /server\.dhcp\.pool is required/);
  const r4 = await zeroboot(['serve', '--interface', 'nosuchif0']);
  t.is(r4.code, 1);
  oneLine(t, r4, /no such interface: nosuchif0/);
});
