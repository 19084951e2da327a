// The node agent's memory and idle CPU (issue 12's goal: RSS under 80 MB,
// under 1% CPU while idle), measured on this host with the real
// `zeroboot agent` process: loop devices as its only disks (--disk, so it
// never looks at the host's), a real registry on loopback to report to, and
// `missing-ssd` so the loop devices (measured as SSDs) still get one zdb
// each. Forms:
//   source  the checkout's TypeScript, as bin/zeroboot runs it (its flags);
//   image   the image's code layer (image/node-runtime.ts) staged in a
//           folder and run with the flags of its /usr/bin/zeroboot.
// After the first signed report it waits --settle seconds, then measures
// the agent's own CPU time (utime+stime from /proc/<pid>/stat) over
// --window seconds, in which it sends reports every --interval seconds.
// VmRSS is read at the end, VmHWM is the peak since start (bring-up
// included). The zdb children are separate processes, listed apart.
// Usage (as root: loop devices, mkfs.btrfs, mount): node --disable-warning=ExperimentalWarning bench/agent-rss.ts [--form source|image|both] [--window S] [--interval S] [--settle S] [--disks N] [--node-flag F]...
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseMountinfo } from '../agent/disks/users.ts';
import { AGENT_NODE_FLAGS } from '../agent/runtime-flags.ts';
import { Registry } from '../boot/registry/store.ts';
import { reportRequestHandler } from '../boot/registry/http.ts';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { commandLaunch, nodeRuntime, SOURCES_DIR } from '../image/node-runtime.ts';
import { cpuSeconds, readStatSync } from '../harness/proc-stat.ts';

const ROOT = join(import.meta.dirname, '..');
const { values: a } = parseBenchArgs('bench/agent-rss.ts', {
  options: {
    form: { type: 'string', default: 'both' },
    window: { type: 'string', default: '60' },
    interval: { type: 'string', default: '60' },
    settle: { type: 'string', default: '10' },
    disks: { type: 'string', default: '2' },
    'node-flag': { type: 'string', multiple: true, default: [] },
  },
});
const forms = a.form === 'both' ? ['source', 'image'] : [a.form];
if (forms.some((f) => f !== 'source' && f !== 'image')) {
  console.error(`bench/agent-rss.ts: --form must be source, image or both, got "${a.form}"`);
  process.exit(2);
}
const num = (v: string, name: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`bench/agent-rss.ts: --${name} must be a number of seconds, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const windowS = num(a.window, 'window');
const settleS = num(a.settle, 'settle');
const diskCount = num(a.disks, 'disks');
const GiB = 1024 ** 3;

const dir = mkdtempSync(join(tmpdir(), 'zb-agent-rss-'));
const loops: string[] = [];

function status(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of readFileSync(`/proc/${pid}/status`, 'utf8').matchAll(/^(Vm\w+|Rss\w+):\s+(\d+) kB$/gm)) out[m[1]] = Number(m[2]) / 1024;
  return out;
}

/** utime + stime of `pid`, in seconds. */
function cpuOf(pid: number): number {
  return cpuSeconds(readStatSync(pid));
}

function children(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

function freshLoops(run: string): string[] {
  const devs: string[] = [];
  for (let i = 0; i < diskCount; i++) {
    const file = join(dir, `${run}-${i}.img`);
    writeFileSync(file, '');
    truncateSync(file, 1.25 * GiB);
    const dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
    loops.push(dev);
    devs.push(dev);
  }
  return devs;
}

function cleanup(): void {
  const ours = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of ours.reverse()) execFileSync('umount', [m.mountPoint]);
  for (const dev of loops.splice(0)) execFileSync('losetup', ['-d', dev]);
}

/** The argv that runs `zeroboot agent` in this form (the image's: its wrapper's flags, its staged sources). */
async function launcher(form: string): Promise<string[]> {
  const extra = a['node-flag'];
  if (form === 'source') return [process.execPath, '--disable-warning=ExperimentalWarning', ...AGENT_NODE_FLAGS, ...extra, join(ROOT, 'cli/zeroboot.ts')];
  const stage = join(dir, 'image');
  const rt = await nodeRuntime(['agent', 'zdb']);
  for (const e of rt.entries) {
    if (e.type !== 'file' || !e.path.startsWith(`${SOURCES_DIR}/`)) continue;
    mkdirSync(join(stage, dirname(e.path)), { recursive: true });
    writeFileSync(join(stage, e.path), e.data);
  }
  const { flags, script } = commandLaunch('agent');
  return [process.execPath, ...flags, ...extra, join(stage, script)];
}

async function measure(form: string): Promise<void> {
  const argv = await launcher(form);
  // A registry of its own per form: the host's MAC is bound to the first form's node key.
  const registry = await Registry.open(join(dir, `state-${form}`));
  const server = createServer(reportRequestHandler(registry));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const disks = freshLoops(form);
  const t0 = performance.now();
  const child = spawn(argv[0], [...argv.slice(1), 'agent', '--server', url, '--interval', a.interval, '--cmdline', 'runmode=dev missing-ssd',
    '--mount-root', join(dir, `mnt-${form}`), '--run-dir', join(dir, `run-${form}`), ...disks.flatMap((d) => ['--disk', d])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const end = Date.now() + 180_000;
    while (registry.list().length === 0) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`${form}: no report arrived; the agent said: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const firstReport = (performance.now() - t0) / 1000;
    const pid = child.pid!;
    await new Promise((r) => setTimeout(r, settleS * 1000));
    const c0 = cpuOf(pid);
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const cpu = cpuOf(pid) - c0;
    const wall = (performance.now() - w0) / 1000;
    const s = status(pid);
    const reported = registry.list()[0].lastReport.agent as { rssBytes: number; peakRssBytes: number } | undefined;
    const zdbs = children(pid).map((c) => status(c).VmRSS);
    console.log(
      `${form.padEnd(7)} VmRSS ${s.VmRSS.toFixed(1)} MB (anon ${s.RssAnon.toFixed(1)}, file ${s.RssFile.toFixed(1)})  VmHWM ${s.VmHWM.toFixed(1)} MB  ` +
        `idle CPU ${((100 * cpu) / wall).toFixed(2)}% (${cpu.toFixed(2)} s in ${wall.toFixed(0)} s)  first report ${firstReport.toFixed(1)} s  ` +
        `bring-up CPU ${c0.toFixed(2)} s  zdbs ${zdbs.length} (${zdbs.map((r) => r.toFixed(0)).join(', ')} MB)  ` +
        `last report says RSS ${reported ? `${(reported.rssBytes / 2 ** 20).toFixed(1)} MB, peak ${(reported.peakRssBytes / 2 ** 20).toFixed(1)} MB` : 'nothing'}`,
    );
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) console.log(`${form}: the agent exited with ${code}: ${stderr.trim().split('\n').at(-1)}`);
    server.close();
    cleanup();
  }
}

try {
  console.log(`agent RSS and idle CPU: ${diskCount} loop disk(s), report every ${a.interval} s, window ${windowS} s after ${settleS} s${a['node-flag'].length ? `, extra flags ${a['node-flag'].join(' ')}` : ''} (goal: RSS < 80 MB, idle CPU < 1%)`);
  for (const form of forms) await measure(form);
} finally {
  cleanup();
  rmSync(dir, { recursive: true, force: true });
}
