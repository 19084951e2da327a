// Every benchmark refuses a flag it does not know, or a bad value, in one
// line with exit 2, before it starts anything (no namespace, no server).
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const BENCH = new URL('../../bench/', import.meta.url).pathname;
const entries = readdirSync(BENCH).filter((f) => f.endsWith('.ts') && /\bparse(Bench)?Args\(/.test(readFileSync(path.join(BENCH, f), 'utf8')));

function run(file: string, args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(BENCH, file), ...args], { timeout: 60_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

test('the benchmarks that take flags are found', (t) => {
  for (const f of ['boot-storm.ts', 'dhcp.ts', 'dhcp-cpu.ts', 'dhcp-flood.ts', 'api-load.ts', 'image-build.ts', 'tftp.ts', 'http.ts', 'zdb.ts', 'flist.ts', 'agent-rss.ts']) t.true(entries.includes(f), f);
});

test('an unknown flag: one line naming it, exit 2, for every benchmark', async (t) => {
  // Four at a time: each is a Node process loading its modules.
  const results: (readonly [string, Awaited<ReturnType<typeof run>>])[] = [];
  for (let i = 0; i < entries.length; i += 4) {
    results.push(...(await Promise.all(entries.slice(i, i + 4).map(async (f) => [f, await run(f, ['--no-such-flag'])] as const))));
  }
  for (const [f, r] of results) {
    t.is(r.code, 2, `${f}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, `${f}: ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`^bench/${f.replace('.', '\\.')}: .*--no-such-flag`), f);
    t.is(r.stdout, '', `${f} printed before refusing`);
  }
});

test('bad values: one line naming the flag, exit 2', async (t) => {
  const cases: [string, string[], RegExp][] = [
    ['boot-storm.ts', ['--only', 'ref'], /--only must be zeroboot or reference/],
    ['boot-storm.ts', ['--clients', '0'], /--clients must be a positive integer/],
    ['boot-storm.ts', ['--only', 'reference', '--cpu-prof', '/tmp/x'], /--cpu-prof profiles zeroboot/],
    ['dhcp.ts', ['--rates', '500,x'], /--rates must be a positive integer/],
    ['dhcp.ts', ['--backend', 'mysql'], /--backend must be file, pg or both/],
    ['dhcp-cpu.ts', ['--sockets', 'raw'], /--sockets must be/],
    ['dhcp-flood.ts', ['--macs', '-1'], /--macs/],
    ['api-load.ts', ['--nice', '40'], /--nice must be an integer from -19 to 19/],
    ['image-build.ts', ['--runs', '0'], /--runs must be a positive integer/],
    ['image-build.ts', ['/nonexistent/image.yaml'], /cannot read \/nonexistent\/image\.yaml: ENOENT/],
  ];
  for (const [f, args, re] of cases) {
    const r = await run(f, args);
    t.is(r.code, 2, `${f} ${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr.trim().split('\n').length, 1, `${f} ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, re);
  }
});
