// The dashboard in a real browser (Debian's chromium, headless, through
// playwright-core) against zeroboot serve in a namespace: a machine walked
// by real clients appears live, progresses, is marked with the cause it was
// made to fail with (a chainload loop), and its "why" panel explains it.
// Screenshots go to artifacts/ at the repository's root.
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForOutput } from '../helpers/netns.ts';
import { startPxeSegment } from '../helpers/pxe-segment.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAC = '52:54:00:cc:00:01';
const QUIET = '52:54:00:cc:00:02';

test('the dashboard shows a machine live, its progress, and why it did not boot', async (t) => {
  if (!existsSync('/usr/bin/chromium')) return t.fail('chromium is not installed (scripts/setup.sh installs it)');
  const seg = await startPxeSegment('zbdash', '10.80.0', [MAC, QUIET]);
  t.teardown(() => seg.destroy());
  const { ns } = seg;

  const artifacts = path.join(ROOT, 'artifacts');
  const browser = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'test/helpers/dashboard-browser.ts'), JSON.stringify({ url: 'http://127.0.0.1:8081/dashboard/', mac: MAC, artifacts, timeoutMs: 120_000 })]);
  let out = '';
  browser.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  browser.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => browser.on('exit', resolve));

  // Another machine, so the list holds more than the one under test.
  await seg.dhcp(QUIET, false);
  await seg.dhcp(MAC, false);
  // The machine moves on only once the page has shown its first stage.
  await waitForOutput(browser, /^appeared$/m, 180_000);
  for (let round = 0; round < 2; round++) {
    if (round > 0) await seg.dhcp(MAC, false);
    await seg.tftp(MAC, 'undionly.kpxe');
  }
  const code = await done;
  t.is(code, 0, out);
  const seen = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as { firstRow: string; laterRow: string; filtered: number; why: string; timelineRows: number; errors: string[] };
  t.regex(seen.firstRow, new RegExp(MAC));
  t.regex(seen.firstRow, /progressing/);
  t.notRegex(seen.firstRow, /downloaded again/, 'the first state shown is a boot under way');
  t.regex(seen.laterRow, /downloaded again/);
  t.is(seen.filtered, 1, 'the search narrows the list to the machine');
  t.regex(seen.why, /undionly\.kpxe was fetched 2 times/);
  t.regex(seen.why, /What to do:/);
  t.true(seen.timelineRows > 5);
  t.deepEqual(seen.errors, []);
  t.true(existsSync(path.join(artifacts, 'dashboard-2-why.png')));
});
