// DHCP full-mode throughput: perfdhcp against zeroboot and against dnsmasq,
// same namespace, same /16 pool size, same offered rates, in one run. Each
// server has its own bridge and perfdhcp host and both run throughout; the
// rates are measured in turn, alternating which server goes first at each
// rate, so neither always gets the quieter (or the warmer) moment of a loaded
// machine. Reports completed 4-way exchanges (DISCOVER-OFFER-REQUEST-ACK) per
// second, the drops, and the server's CPU time per lease (perfdhcp shares the
// machine's cores, so the achieved rate alone can hide where the time goes),
// and the datagrams each side's kernel dropped for a full receive buffer: a
// drop at perfdhcp's socket means the load generator, not the server, fell
// behind. perfdhcp never sizes its socket's receive buffer, so it gets the
// namespace's default (208 KiB; a namespace cannot raise net.core.rmem_default)
// and overflows on a burst of replies: both perfdhcp runs get --client-rcvbuf
// bytes instead, set by an LD_PRELOAD shim (bench/native/rcvbuf-preload.c,
// compiled with cc at start). --client-rcvbuf 0 leaves perfdhcp's default.
// Each step prints what perfdhcp really sent per second and its own CPU per
// lease (GNU time): on 2 shared cores the generator can be what limits the
// completed rate. --perfdhcp-threads is its -g, the same for both servers:
// single by default, since its multi mode (the default on 2 or more CPUs)
// took 120-150 us of CPU per lease here against 70-90 for single, and at
// 10,000/s that alone is more than one of the machine's 2 cores.
//   node bench/dhcp.ts [--rates 500,1000,2000,4000] [--period 5] [--clients 50000]
//                      [--only zeroboot] [--cpu-prof DIR] [--node-options '...']
//                      [--client-rcvbuf 4194304] [--perfdhcp-threads single] [--backend file|pg|both] [--dhcp-thread on|off]
// --backend file|pg|both picks zeroboot's lease backend: the state directory's
// file (default), PostgreSQL (a throwaway cluster started here, reached over its
// unix socket from the namespace; the same durability: fsync and synchronous
// commit on), or both side by side as two servers on their own bridges, with
// the ratio printed; the pg rows add PostgreSQL's own CPU (postmaster and its
// backends) per lease.
// --only zeroboot skips dnsmasq; --cpu-prof writes zeroboot's V8 CPU profile to DIR when it stops;
// zeroboot's Node runs with the flags `zeroboot serve` uses (boot/runtime-flags.ts: a 2 MiB
// young generation, which costs DHCP time but gives memory back after a burst);
// --node-options replaces them (e.g. --node-options '' for Node's defaults; a value that starts with a dash takes
// the = form: --node-options=--max-semi-space-size=16).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { Netns } from '../qemu/netns.ts';
import { folder, removeOnSignal, type RemovableSync } from '../harness/remove-on-signal.ts';
import { waitForOutput } from '../lib/process.ts';
import { startDhcp, tempDir } from '../harness/dhcp-server.ts';
import { SERVE_NODE_FLAGS } from '../boot/runtime-flags.ts';
import { startPostgres } from '../harness/postgres.ts';
import type { Postgres } from '../harness/postgres.ts';
import { CLK_TCK, cpuSeconds, cpuTicks, readStat } from '../harness/proc-stat.ts';
import { oneOf, parseBenchArgs, positiveInt } from '../harness/bench-args.ts';

const SCRIPT = 'bench/dhcp.ts';
const { values: a } = parseBenchArgs(SCRIPT, {
  options: {
    rates: { type: 'string', default: '500,1000,2000,4000,8000,12000' },
    period: { type: 'string', default: '5' },
    clients: { type: 'string', default: '50000' },
    only: { type: 'string', default: '' },
    'cpu-prof': { type: 'string', default: '' },
    'node-options': { type: 'string' },
    'perfdhcp-threads': { type: 'string', default: 'single' },
    'client-rcvbuf': { type: 'string', default: String(4 * 1024 * 1024) },
    backend: { type: 'string', default: 'file' },
    'dhcp-thread': { type: 'string', default: 'on' },
  },
});
const RATES = a.rates.split(',').map((r) => positiveInt(SCRIPT, 'rates', r.trim(), 1_000_000));
const PERIOD = positiveInt(SCRIPT, 'period', a.period, 3600);
const CLIENTS = positiveInt(SCRIPT, 'clients', a.clients, 16_000_000);
const ONLY = oneOf(SCRIPT, 'only', a.only, ['', 'zeroboot']);
const CPU_PROF = a['cpu-prof'];
const NODE_OPTIONS = [a['node-options'] ?? SERVE_NODE_FLAGS.join(' '), CPU_PROF ? `--cpu-prof --cpu-prof-dir=${CPU_PROF}` : ''].join(' ').trim();
const PERFDHCP_MODE = oneOf(SCRIPT, 'perfdhcp-threads', a['perfdhcp-threads'], ['single', 'multi']);
const CLIENT_RCVBUF = a['client-rcvbuf'] === '0' ? 0 : positiveInt(SCRIPT, 'client-rcvbuf', a['client-rcvbuf']);
const BACKEND = oneOf(SCRIPT, 'backend', a.backend, ['file', 'pg', 'both']);
const THREAD = oneOf(SCRIPT, 'dhcp-thread', a['dhcp-thread'], ['on', 'off']) === 'on';
const MASK = '255.255.0.0';
/** Each server's network: its address, its perfdhcp host's, and a /16 pool of the same size. */
const NET = {
  zeroboot: { server: '10.70.0.1', host: '10.70.0.2/16', start: '10.70.1.0', end: '10.70.255.254' },
  dnsmasq: { server: '10.71.0.1', host: '10.71.0.2/16', start: '10.71.1.0', end: '10.71.255.254' },
  'zeroboot-pg': { server: '10.72.0.1', host: '10.72.0.2/16', start: '10.72.1.0', end: '10.72.255.254' },
};

interface Step {
  rate: number;
  achieved: number;
  acks: number;
  dropsDO: number;
  dropsRA: number;
  /** DISCOVERs perfdhcp sent per second: below the offered rate, the generator itself fell behind. */
  sentPerSecond: number;
  cpuUsPerLease: number;
  /** The lease database's CPU per lease (PostgreSQL backend only). */
  dbCpuUsPerLease: number;
  generatorCpuUsPerLease: number;
  /** Datagrams the kernel dropped at the server's sockets and at perfdhcp's (full receive buffers). */
  serverRcvbuf: number;
  clientRcvbuf: number;
}

async function cpuOf(pid: number): Promise<number> {
  return cpuSeconds(await readStat(pid));
}

/** A process tree's CPU: its own, its reaped children's (PostgreSQL's ended backends), and its live children's. */
async function treeCpuSeconds(pid: number): Promise<number> {
  const own = await readStat(pid);
  let ticks = cpuTicks(own) + Number(own[13]) + Number(own[14]);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = await readStat(Number(entry)).catch(() => undefined);
    if (f && Number(f[1]) === pid) ticks += cpuTicks(f);
  }
  return ticks / CLK_TCK;
}

/** UDP datagrams a namespace's kernel dropped for a full socket buffer (RcvbufErrors in /proc/net/snmp): who could not keep up. */
async function udpRcvbufErrors(net: Netns): Promise<number> {
  const lines = (await net.exec('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

/** Compiles the receive-buffer shim into `dir`; exits with one line if there is no C compiler. */
async function buildRcvbufShim(dir: string): Promise<string> {
  const out = join(dir, 'rcvbuf-preload.so');
  const src = new URL('./native/rcvbuf-preload.c', import.meta.url).pathname;
  try {
    await promisify(execFile)('cc', ['-shared', '-fPIC', '-O2', '-o', out, src, '-ldl']);
  } catch (e) {
    console.error(`error: cannot build ${src} (${(e as Error).message.split('\n')[0]}); install a C compiler or pass --client-rcvbuf 0`);
    process.exit(1);
  }
  return out;
}

function generator(x: Subject, args: string[], timeout: number) {
  const [cmd, ...rest] = x.perfdhcp;
  return x.host.exec(cmd!, [...rest, ...args], { timeout });
}

async function perfdhcp(x: Subject, rate: number): Promise<Omit<Step, 'cpuUsPerLease' | 'dbCpuUsPerLease' | 'serverRcvbuf' | 'clientRcvbuf'>> {
  const r = await generator(x, ['-4', '-l', 'eth0', '-r', String(rate), '-p', String(PERIOD), '-R', String(CLIENTS), '-W', '1000000'], (PERIOD + 30) * 1000);
  const out = r.stdout + r.stderr;
  const rateMatch = /Rate: ([\d.]+) 4-way exchanges\/second/.exec(out);
  const received = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  const drops = [...out.matchAll(/drops: (\d+)/g)].map((m) => Number(m[1]));
  const sent = [...out.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const gen = /generator-cpu ([\d.]+) ([\d.]+)/.exec(out);
  if (!rateMatch || received.length < 2) throw new Error(`perfdhcp output not understood (exit ${r.code}):\n${out.slice(-2000)}`);
  return {
    rate, achieved: Number(rateMatch[1]), acks: received[1], dropsDO: drops[0], dropsRA: drops[1],
    sentPerSecond: (sent[0] ?? 0) / PERIOD,
    generatorCpuUsPerLease: gen && received[1] ? ((Number(gen[1]) + Number(gen[2])) * 1e6) / received[1] : 0,
  };
}

interface Subject {
  name: string;
  /** The namespace the server runs in, and perfdhcp's. */
  server: Netns;
  host: Netns;
  /** The command that starts perfdhcp: the same for both servers. */
  perfdhcp: string[];
  pid: number;
  /** The lease database's postmaster, when the server keeps its leases there. */
  dbPid?: number;
  steps: Step[];
}

async function warmUp(x: Subject): Promise<void> {
  // JIT, first leases, ARP: so the first measured step is not a cold start.
  const r = await generator(x, ['-4', '-l', 'eth0', '-r', '300', '-p', '2', '-R', String(CLIENTS)], 30_000);
  // The kernel reports twice the size asked for (its bookkeeping share); less means the shim did not take.
  const got = Number(/zb-rcvbuf (\d+)/.exec(r.stderr)?.[1] ?? 0);
  if (CLIENT_RCVBUF > 0 && got < CLIENT_RCVBUF) {
    throw new Error(`perfdhcp's receive buffer is ${got || 'unknown (no line from the shim)'} bytes, not the ${CLIENT_RCVBUF} asked for: the LD_PRELOAD shim did not take`);
  }
}

async function step(x: Subject, rate: number): Promise<void> {
  const [serverBefore, clientBefore] = [await udpRcvbufErrors(x.server), await udpRcvbufErrors(x.host)];
  const before = await cpuOf(x.pid);
  const dbBefore = x.dbPid ? await treeCpuSeconds(x.dbPid) : 0;
  const s = await perfdhcp(x, rate);
  const cpu = (await cpuOf(x.pid)) - before;
  const dbCpu = x.dbPid ? (await treeCpuSeconds(x.dbPid)) - dbBefore : 0;
  const serverRcvbuf = (await udpRcvbufErrors(x.server)) - serverBefore;
  const clientRcvbuf = (await udpRcvbufErrors(x.host)) - clientBefore;
  const st = { ...s, cpuUsPerLease: s.acks ? (cpu * 1e6) / s.acks : 0, dbCpuUsPerLease: s.acks ? (dbCpu * 1e6) / s.acks : 0, serverRcvbuf, clientRcvbuf };
  x.steps.push(st);
  console.log(
    `${x.name.padEnd(11)} offered ${String(rate).padStart(6)}/s  sent ${st.sentPerSecond.toFixed(0).padStart(6)}/s  completed ${st.achieved.toFixed(0).padStart(6)}/s  ` +
      `drops DO ${st.dropsDO} RA ${st.dropsRA}  server CPU ${st.cpuUsPerLease.toFixed(0)} us/lease${x.dbPid ? ` (+ PostgreSQL ${st.dbCpuUsPerLease.toFixed(0)})` : ''}  perfdhcp CPU ${st.generatorCpuUsPerLease.toFixed(0)} us/lease  ` +
      `full-buffer drops: server ${st.serverRcvbuf} perfdhcp ${st.clientRcvbuf}`,
  );
}

/** zeroboot in `ns` on `bridge`, its leases in `pg` when given, warmed up. */
async function startZeroboot(name: 'zeroboot' | 'zeroboot-pg', ns: Netns, dir: string, perfdhcpCommand: string[], db?: Postgres): Promise<{ subject: Subject; stop: () => Promise<unknown> }> {
  const z = NET[name];
  await ns.bridge('br0', `${z.server}/16`);
  const host = await ns.host('br0', { cidr: z.host });
  // The namespace cannot reach the host's loopback; PostgreSQL's unix socket is a file it can see.
  const pg = db ? { pg: `postgresql:///postgres?host=${encodeURIComponent(db.dir)}&port=${db.port}&user=zeroboot` } : {};
  const server = await startDhcp(ns, dir, {
    ...pg,
    server: {
      address: z.server,
      interfaces: ['br0'],
      dhcp: { mode: 'full', thread: THREAD, leasesFile: join(dir, `${name}-leases.json`), pool: { start: z.start, end: z.end, subnetMask: MASK, leaseSeconds: 3600 } },
      stateDir: dir,
    },
  }, { quiet: true, name, wrap: NODE_OPTIONS ? ['env', `NODE_OPTIONS=${NODE_OPTIONS}`] : undefined });
  const subject: Subject = { name, server: ns, host, perfdhcp: perfdhcpCommand, pid: server.child.pid!, dbPid: db?.pid, steps: [] };
  await warmUp(subject);
  return { subject, stop: () => server.stop() };
}

const best = (s: Step[]) => Math.max(...s.map((x) => x.achieved));
const clean = (s: Step[]) => Math.max(0, ...s.filter((x) => x.dropsDO + x.dropsRA <= x.acks / 1000).map((x) => x.achieved));
const weighted = (s: Step[], f: (x: Step) => number) => s.reduce((a, x) => a + f(x) * x.acks, 0) / s.reduce((a, x) => a + x.acks, 0);
const cpu = (s: Step[]) => weighted(s, (x) => x.cpuUsPerLease);

function compare(a: Subject, b: Subject): void {
  const [x, y] = [a.steps, b.steps];
  const pad = (n: string) => n.padEnd(11);
  console.log('');
  console.log(`leases/s, best completed:        ${pad(a.name)} ${best(x).toFixed(0)}  ${pad(b.name)} ${best(y).toFixed(0)}  ratio ${(best(x) / best(y)).toFixed(2)}x`);
  const cleanRatio = clean(y) > 0 ? `${(clean(x) / clean(y)).toFixed(2)}x` : `n/a (${b.name} dropped at every rate)`;
  console.log(`leases/s, best with <0.1% drops: ${pad(a.name)} ${clean(x).toFixed(0)}  ${pad(b.name)} ${clean(y).toFixed(0)}  ratio ${cleanRatio}`);
  console.log(`server CPU per lease (us):       ${pad(a.name)} ${cpu(x).toFixed(0)}  ${pad(b.name)} ${cpu(y).toFixed(0)}  ratio ${(cpu(y) / cpu(x)).toFixed(2)}x (higher is better for ${a.name})`);
  for (const s of [a, b]) {
    if (s.dbPid) console.log(`  ${s.name}: + PostgreSQL ${weighted(s.steps, (z) => z.dbCpuUsPerLease).toFixed(0)} us of CPU per lease (server + database ${weighted(s.steps, (z) => z.cpuUsPerLease + z.dbCpuUsPerLease).toFixed(0)})`);
  }
}

async function main(): Promise<void> {
  const spaces: Netns[] = [];
  const tmp = await tempDir('zb-bench-dhcp-');
  let dnsmasq: ChildProcess | undefined;
  let db: Postgres | undefined;
  const stops: (() => Promise<unknown>)[] = [];
  const removable: RemovableSync[] = [folder(tmp.dir)];
  const unhook = removeOnSignal(removable);
  try {
    // GNU time reports perfdhcp's own CPU: on 2 shared cores the generator can be what limits the rate.
    const shim = CLIENT_RCVBUF > 0 ? ['env', `LD_PRELOAD=${await buildRcvbufShim(tmp.dir)}`, `ZB_RCVBUF=${CLIENT_RCVBUF}`] : [];
    const perfdhcpCommand = ['/usr/bin/time', '-f', 'generator-cpu %U %S', ...shim, 'perfdhcp', '-g', PERFDHCP_MODE];
    const buffer = CLIENT_RCVBUF > 0 ? `receive buffer ${CLIENT_RCVBUF} bytes` : 'default receive buffer';
    console.log(`perfdhcp: rates ${RATES.join(', ')}/s, ${PERIOD} s each, ${CLIENTS} simulated clients, ${buffer}; /16 pools; order alternates per rate; lease backend ${BACKEND}`);
    const subjects: Subject[] = [];
    // Each server in its own namespace: its own bridge, its own :67.
    const space = async (prefix: string) => {
      const ns = await Netns.create(prefix);
      spaces.push(ns);
      removable.push(ns);
      return ns;
    };
    if (BACKEND !== 'pg') {
      const z = await startZeroboot('zeroboot', await space('zbb'), tmp.dir, perfdhcpCommand);
      stops.push(z.stop);
      subjects.push(z.subject);
    }
    if (BACKEND !== 'file') {
      db = await startPostgres();
      const z = await startZeroboot('zeroboot-pg', await space('zbp'), tmp.dir, perfdhcpCommand, db);
      stops.push(z.stop);
      subjects.push(z.subject);
    }
    if (ONLY !== 'zeroboot') {
      const d = NET.dnsmasq;
      const ns = await space('zbd');
      await ns.bridge('br1', `${d.server}/16`);
      const dmHost = await ns.host('br1', { cidr: d.host });
      dnsmasq = ns.spawn('dnsmasq', [
        '--no-daemon', '--port=0', '--bind-interfaces', '--interface=br1', `--dhcp-range=${d.start},${d.end},${MASK},1h`,
        '--dhcp-authoritative', '--no-ping', '--dhcp-lease-max=70000', '--quiet-dhcp', `--dhcp-leasefile=${join(tmp.dir, 'dnsmasq.leases')}`, '--pid-file=',
      ]);
      await waitForOutput(dnsmasq, /DHCP, sockets bound exclusively to interface br1/);
      const dms: Subject = { name: 'dnsmasq', server: ns, host: dmHost, perfdhcp: perfdhcpCommand, pid: dnsmasq.pid!, steps: [] };
      await warmUp(dms);
      subjects.push(dms);
    }
    // Each rate starts with the next subject in turn, so none always gets the quieter (or warmer) moment.
    for (const [i, rate] of RATES.entries()) {
      for (let k = 0; k < subjects.length; k++) await step(subjects[(i + k) % subjects.length]!, rate);
    }
    const ours = subjects.filter((x) => x.name !== 'dnsmasq');
    const theirs = subjects.find((x) => x.name === 'dnsmasq');
    if (ours.length === 2) compare(ours[1]!, ours[0]!);
    if (theirs) for (const z of ours) compare(z, theirs);
  } finally {
    for (const stop of stops) await stop();
    if (dnsmasq?.pid) dnsmasq.kill('SIGTERM');
    for (const ns of spaces) await ns.destroy();
    await db?.stop();
    await tmp.remove();
    unhook();
  }
}

try {
  await main();
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  process.exitCode = 1;
}
