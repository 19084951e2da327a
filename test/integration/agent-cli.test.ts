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

test('--once on this host loads only the five systeminformation modules it reads, not the package index', (t) => {
  // Node's CommonJS cache, read at exit, lists every module file loaded.
  const probe = "import { createRequire } from 'node:module'; const r = createRequire(process.cwd() + \"/\"); process.on('exit', () => process.stderr.write(Object.keys(r.cache).filter((f) => f.includes('/systeminformation/')).map((f) => f.replace(/.*\\/systeminformation\\//, '')).sort().join(' ')));";
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', `data:text/javascript,${encodeURIComponent(probe)}`, join(ROOT, 'cli/zeroboot.ts'), 'agent', '--once'], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, 'lib/cpu.js lib/filesystem.js lib/memory.js lib/network.js lib/system.js lib/util.js');
});

test('usage errors are one line and exit 2', (t) => {
  for (const args of [[], ['--once', 'extra'], ['--bogus'], ['--once', '--root', '/nonexistent'], ['--once', '--disk', '/dev/loop0'], ['--disk', 'loop0', '--server', 'http://127.0.0.1:1']]) {
    const r = run(...args);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, /^zeroboot: agent: [^\n]+\n$/, args.join(' '));
  }
});

test('the running agent on a recorded tree registers as a diskless node and stops on SIGTERM', async (t) => {
  const { createServer } = await import('node:http');
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { Registry } = await import('../../boot/registry/store.ts');
  const { reportRequestHandler } = await import('../../boot/registry/http.ts');
  const dir = mkdtempSync(join(tmpdir(), 'agent-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const registry = await Registry.open(join(dir, 'state'));
  const server = createServer(reportRequestHandler(registry));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  // 200 MiB touched here, in the process that forks the agent: the peak RSS the agent reports must be its own, not this one's.
  const ballast = Buffer.alloc(200 * 2 ** 20, 1);
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'cli/zeroboot.ts'), 'agent', '--server', url, '--interval', '5', '--root', join(ROOT, 'test/fixtures/agent/qemu-storage-uefi'), '--mount-root', join(dir, 'mnt'), '--run-dir', join(dir, 'run')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  const end = Date.now() + 60_000;
  while (registry.list().length === 0) {
    if (Date.now() > end || child.exitCode !== null) t.fail(`no report arrived; agent said: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const [node] = registry.list();
  t.like(node, { diskless: true, macs: ['52:54:00:00:01:01'] });
  t.like(node.lastReport, { capacity: { cru: 2, sru: 0, hru: 0 }, zdbs: [] });
  const usage = node.lastReport.agent as { rssBytes: number; peakRssBytes: number };
  t.true(usage.peakRssBytes >= usage.rssBytes && usage.peakRssBytes < ballast.length, JSON.stringify(usage));
  t.regex(stderr, /diskless: key in memory only/);
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
