// HTTP under abuse: N connections on loopback each ask for a large artifact
// and never read a byte. Measures the server process from outside (/proc):
// its peak RSS, its RSS and open fds while the clients hold on, and its RSS
// after they leave, until it is back near the baseline. Each scenario runs
// against a fresh server process (harness/http-server-entry.ts).
//   node bench/http-abuse.ts [--connections N] [--mib N] [--hold S] [--after S] [--scenario NAME]...
// Scenarios: one-host (all from 127.0.0.2, default limits), many-hosts (spread
// over 200 addresses 127.0.x.y with the per-address cap off, so the total cap
// and the per-connection memory are measured), no-caps (both caps off: the
// per-connection memory times N, up to the fd limit), no-caps-no-stall (also
// without the send-stall timeout).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { fileURLToPath } from 'node:url';
import { waitForOutput } from '../lib/process.ts';
import { SERVE_NODE_FLAGS } from '../boot/runtime-flags.ts';

const { values } = parseBenchArgs('bench/http-abuse.ts', {
  options: {
    connections: { type: 'string', default: '10000' },
    mib: { type: 'string', default: '64' },
    hold: { type: 'string', default: '15' },
    after: { type: 'string', default: '60' },
    scenario: { type: 'string', multiple: true, default: ['one-host', 'many-hosts', 'no-caps'] },
  },
});
const N = Number(values.connections);
const HOLD_S = Number(values.hold);
const AFTER_S = Number(values.after);
const entry = fileURLToPath(new URL('../harness/http-server-entry.ts', import.meta.url));
/** "Back near the baseline": within this much of it. */
const NEAR_MB = 50;

interface Scenario {
  name: string;
  serverArgs: string[];
  /** Source addresses the clients bind to, round robin. */
  sources: string[];
}

const manySources = Array.from({ length: 200 }, (_, i) => `127.0.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`);
const SCENARIOS: Record<string, Scenario> = {
  'one-host': { name: 'one host, default limits', serverArgs: [], sources: ['127.0.0.2'] },
  'many-hosts': { name: `${manySources.length} hosts, default limits, per-address cap off`, serverArgs: ['--max-per-address', '0'], sources: manySources },
  'no-caps': { name: 'both caps off (per-connection memory x N)', serverArgs: ['--max-per-address', '0', '--max-connections', '0'], sources: manySources },
  'no-caps-no-stall': {
    name: 'caps and send-stall timeout off',
    serverArgs: ['--max-per-address', '0', '--max-connections', '0', '--send-stall-ms', '0'],
    sources: manySources,
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function hwmMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
}

const fds = async (pid: number) => (await readdir(`/proc/${pid}/fd`)).length;

/** Opens one connection that requests the file and never reads; resolves once connected (or refused). */
function stuckClient(port: number, source: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: source });
    s.pause();
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
    s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\nUser-Agent: abuse\r\n\r\n');
  });
}

async function run(dir: string, sc: Scenario): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...SERVE_NODE_FLAGS, entry, '--dir', dir, '--port', '0', '--log-level', 'error', ...sc.serverArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pid = child.pid!;
  try {
    const port = Number(/port=(\d+)/.exec(await waitForOutput(child, /http ready .*port=\d+/, 60_000))![1]);
    // Warm up with one real download, then take the baseline.
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('data', () => undefined);
      s.on('close', () => resolve());
      s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    await sleep(1000);
    const base = { rss: await rssMb(pid), fds: await fds(pid) };
    const t0 = Date.now();
    const clients: Socket[] = [];
    const BATCH = 250;
    for (let i = 0; i < N; i += BATCH) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) batch.push(stuckClient(port, sc.sources[j % sc.sources.length]));
      clients.push(...(await Promise.all(batch)));
    }
    const openedS = (Date.now() - t0) / 1000;
    // Hold, sampling: the server has read every request and filled every socket it will.
    let peakFds = 0;
    let peakRss = 0;
    for (const end = Date.now() + HOLD_S * 1000; Date.now() < end; ) {
      peakFds = Math.max(peakFds, (await fds(pid)) - base.fds);
      peakRss = Math.max(peakRss, await rssMb(pid));
      await sleep(250);
    }
    const held = { rss: await rssMb(pid), fds: (await fds(pid)) - base.fds };
    for (const c of clients) c.destroy();
    const left = Date.now();
    const after: string[] = [];
    let nearAt: number | undefined;
    for (let s = 0; s <= AFTER_S; s++) {
      const r = await rssMb(pid);
      if (nearAt === undefined && r <= base.rss + NEAR_MB) nearAt = (Date.now() - left) / 1000;
      if (s % 10 === 0) after.push(`${s}s ${r.toFixed(0)}`);
      if (s < AFTER_S) await sleep(Math.max(0, left + (s + 1) * 1000 - Date.now()));
    }
    console.log(`${sc.name}: ${N} connections asking for a ${values.mib} MiB file, never reading (opened in ${openedS.toFixed(1)} s)`);
    console.log(`  baseline        RSS ${base.rss.toFixed(0)} MB, ${base.fds} fds`);
    console.log(`  held ${HOLD_S}s         RSS ${held.rss.toFixed(0)} MB (peak ${peakRss.toFixed(0)}, VmHWM ${(await hwmMb(pid)).toFixed(0)}), open fds ${held.fds} (peak ${peakFds}; a held download is its socket and its file)`);
    console.log(`  after leaving   RSS MB: ${after.join(', ')}; within ${NEAR_MB} MB of baseline after ${nearAt === undefined ? `more than ${AFTER_S}` : nearAt.toFixed(0)} s`);
    console.log(`  target: peak RSS < 400 MB: ${peakRss < 400 ? 'met' : 'MISSED'}; near baseline within 60 s: ${nearAt !== undefined && nearAt <= 60 ? 'met' : 'MISSED'}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

async function main(): Promise<void> {
  const unknown = values.scenario.filter((name) => !SCENARIOS[name]);
  if (unknown.length > 0) {
    console.error(`unknown scenario ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    process.exit(2);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bench-abuse-'));
  try {
    await writeFile(path.join(dir, 'big.bin'), Buffer.alloc(Number(values.mib) * 1024 * 1024, 0x5a));
    for (const name of values.scenario) await run(dir, SCENARIOS[name]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
