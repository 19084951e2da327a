// HTTP download throughput, side by side in one network namespace (loopback
// inside it): nginx (sendfile on) and zeroboot's HTTP server serve the same
// 64 MiB file to 8 parallel curl processes. The aggregate MiB/s of a round is
// 8 x size over the wall time from the first start to the last finish, timed
// inside the namespace. Servers take turns round by round; the median of the
// rounds is reported with the ratio zeroboot / nginx, and the server CPU per
// GiB (steadier than MiB/s when the machine is shared).
//   node bench/http.ts [--runs N] [--mib N] [--parallel N]
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { Netns } from '../qemu/netns.ts';
import { folder, removeOnSignal } from '../harness/remove-on-signal.ts';
import { sh, waitForOutput } from '../lib/process.ts';
import { startNginx } from '../harness/nginx.ts';

const { values } = parseBenchArgs('bench/http.ts', { options: { runs: { type: 'string', default: '3' }, mib: { type: 'string', default: '64' }, parallel: { type: 'string', default: '8' } } });
const RUNS = Number(values.runs);
const MIB = Number(values.mib);
const PARALLEL = Number(values.parallel);
const entry = fileURLToPath(new URL('../harness/http-server-entry.ts', import.meta.url));
const NGINX_PORT = 18090;
const OURS_PORT = 18091;

/** CPU seconds (user + system, all threads) used so far by the namespace's processes whose command is `comm`. */
async function cpuSeconds(ns: Netns, comm: string): Promise<number> {
  const pids = (await sh('ip', ['netns', 'pids', ns.name])).split(/\s+/).filter(Boolean);
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \((.*)\) (.*)$/.exec(stat.trim());
    if (!m || m[1] !== comm) continue;
    const f = m[2].split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

async function pidCpuSeconds(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bench-http-'));
  const ns = await Netns.create('zbbench');
  const unhook = removeOnSignal([folder(dir), ns]);
  try {
    const www = path.join(dir, 'www');
    await mkdir(www);
    await writeFile(path.join(www, 'big.bin'), randomBytes(MIB * 1024 * 1024));
    // nginx workers drop to an unprivileged user and must be able to read.
    await chmod(dir, 0o755);
    await chmod(www, 0o755);

    await startNginx(ns, { dir, root: www, address: '127.0.0.1', port: NGINX_PORT, workers: 'auto' }, 'big.bin');
    const ours = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry, '--host', '127.0.0.1', '--port', String(OURS_PORT), '--dir', www, '--log-level', 'warn']);
    await waitForOutput(ours, /http ready/);

    // One shell in the namespace starts the curls and times them with its own clock.
    const round = async (port: number): Promise<number> => {
      const url = `http://127.0.0.1:${port}/big.bin`;
      const script = `s=$(date +%s%N); for i in $(seq ${PARALLEL}); do curl -s -o /dev/null -w '%{size_download}\\n' ${url} & done; wait; e=$(date +%s%N); echo "ns $((e - s))"`;
      const r = await ns.exec('bash', ['-c', script], { timeout: 300_000 });
      const sizes = r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
      const want = MIB * 1024 * 1024;
      if (sizes.length !== PARALLEL || sizes.some((s) => s !== want)) throw new Error(`port ${port}: incomplete downloads ${sizes.join(',')} ${r.stderr}`);
      const ns_ = Number(/ns (\d+)/.exec(r.stdout)![1]);
      return (PARALLEL * MIB) / (ns_ / 1e9);
    };

    // Each zeroboot server is a Node process: tell them apart by pid.
    const pidOf = async (port: number) => {
      const r = await ns.exec('ss', ['-Hltnp', `sport = :${port}`]);
      return Number(/pid=(\d+)/.exec(r.stdout)?.[1]);
    };
    const servers = [
      { name: 'nginx (sendfile)', port: NGINX_PORT, cpu: () => cpuSeconds(ns, 'nginx') },
      { name: 'zeroboot', port: OURS_PORT, pid: await pidOf(OURS_PORT) },
    ].map((x) => ({ ...x, cpu: x.cpu ?? (() => pidCpuSeconds(x.pid!)), rounds: [] as number[], used: 0 }));

    // Warm the page cache and every server.
    for (const s of servers) await round(s.port);
    for (let i = 0; i < RUNS; i++) {
      for (const s of servers) {
        const c0 = await s.cpu();
        s.rounds.push(await round(s.port));
        s.used += (await s.cpu()) - c0;
      }
    }
    const gib = (RUNS * PARALLEL * MIB) / 1024;
    console.log(`HTTP ${PARALLEL} x ${MIB} MiB in parallel, curl clients, loopback in namespace ${ns.name}, median of ${RUNS} rounds`);
    const ref = median(servers[0].rounds);
    for (const s of servers) {
      const m = median(s.rounds);
      console.log(
        `  ${s.name.padEnd(18)} ${m.toFixed(0).padStart(6)} MiB/s  (${(m / ref).toFixed(2)}x nginx)  rounds: ${s.rounds.map((x) => x.toFixed(0)).join(', ').padEnd(20)} server CPU ${(s.used / gib).toFixed(2)} s/GiB`,
      );
    }
    console.log('  goal: zeroboot >= 0.80x nginx');
  } finally {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
    unhook();
  }
}

await main();
