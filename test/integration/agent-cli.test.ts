// `zeroboot agent --once` as a user runs it: on a recorded tree and on this host.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
const run = (...args: string[]) => spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'cli/zeroboot.ts'), 'agent', ...args], { encoding: 'utf8', timeout: 60_000 });

test('--once --json on a recorded QEMU tree: inventory and the disk verdicts, devices looked for inside the tree', (t) => {
  const r = run('--once', '--json', '--root', join(ROOT, 'test/fixtures/agent/qemu-nvme-sata'));
  t.is(r.status, 0, r.stderr);
  const v = JSON.parse(r.stdout);
  t.is(v.inventory.cpu.logical, 4);
  t.is(v.capacity.cru, 4);
  t.deepEqual(v.disks.map((d: { name: string; state: string; reason: string }) => [d.name, d.state, d.reason]), [
    ['nvme0n1', 'foreign', 'unreadable (ENOENT)'],
    ['sda', 'foreign', 'unreadable (ENOENT)'],
    ['sdb', 'foreign', 'unreadable (ENOENT)'],
    ['sdc', 'skipped', 'usb disk'],
    ['sr0', 'skipped', 'cdrom device'],
  ]);
  t.true(v.disks[0].path.startsWith(join(ROOT, 'test/fixtures/agent/qemu-nvme-sata/dev/')));
});

test('--once on this host prints lines; the mounted system disk is in use, never blank', (t) => {
  const r = run('--once');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^cpu {6}\d+ x /m);
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('disk'))) t.notRegex(line, / blank:| candidate:/, line);
});

test('usage errors are one line and exit 2', (t) => {
  for (const args of [[], ['--once', 'extra'], ['--bogus'], ['--once', '--root', '/nonexistent']]) {
    const r = run(...args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, /^zeroboot: agent: [^\n]+\n$/, args.join(' '));
  }
});
