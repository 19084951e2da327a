// A boot storm: N simulated PXE machines power on together (spread over
// --spread ms) and each does DHCP as a PXE ROM, TFTP of the iPXE binary,
// DHCP as iPXE, the chain and machine scripts, kernel, initrd, an `at: boot`
// layer (.fl and chunks) and, for zeroboot, a signed report
// (bench/boot-storm-client.ts). The same storm then goes to dnsmasq (DHCP,
// TFTP) + nginx (scripts, kernel, initrd, layer as static files), the
// reference for the stages they can serve; the ratio is over those stages.
// Both sides: the same files, the same TFTP transfer cap, one process each
// for DHCP/TFTP and HTTP work (nginx with one worker), their own bridge and
// client namespace, the clients run in turn (order alternates with --order).
// Printed per side: boots/min, failures (with the first reasons), p50/p99 per
// stage, DHCP exchange p99, the server's peak RSS and CPU seconds.
//   node bench/boot-storm.ts [--clients 1000] [--spread 1000] [--kernel-mib 8] [--initrd-mib 24]
//                            [--layer-mib 4] [--tftp-max 64] [--only zeroboot|reference] [--order ref-first] [--cpu-prof DIR]
//                            [--dhcp-thread on|off]
// --cpu-prof writes zeroboot's V8 CPU profile to DIR (the server is stopped with SIGTERM at the end).
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { stringify } from 'yaml';
import { Netns } from '../qemu/netns.ts';
import { folder, removeOnSignal } from '../harness/remove-on-signal.ts';
import { runCommand, waitForOutput } from '../lib/process.ts';
import { tempDir } from '../harness/dhcp-server.ts';
import { startNginx } from '../harness/nginx.ts';
import { oneOf, parseBenchArgs, positiveInt, refuseFlag } from '../harness/bench-args.ts';
import { parsePromText } from '../harness/prom-text.ts';
import { STAGES, type ClientResult, type Stage, type StormPlan, type StormResult } from './boot-storm-client.ts';
import { cpuSeconds, readStat } from '../harness/proc-stat.ts';

const SCRIPT = 'bench/boot-storm.ts';
const { values: a } = parseBenchArgs(SCRIPT, {
  options: {
    clients: { type: 'string', default: '1000' },
    spread: { type: 'string', default: '1000' },
    'kernel-mib': { type: 'string', default: '8' },
    'initrd-mib': { type: 'string', default: '24' },
    'layer-mib': { type: 'string', default: '4' },
    'tftp-max': { type: 'string', default: '64' },
    only: { type: 'string', default: '' },
    order: { type: 'string', default: 'zeroboot-first' },
    deadline: { type: 'string', default: '900' },
    'cpu-prof': { type: 'string', default: '' },
    'dhcp-thread': { type: 'string', default: 'on' },
  },
});
for (const name of ['clients', 'spread', 'kernel-mib', 'initrd-mib', 'layer-mib', 'tftp-max', 'deadline'] as const) positiveInt(SCRIPT, name, a[name], 1_000_000);
oneOf(SCRIPT, 'only', a.only, ['', 'zeroboot', 'reference']);
oneOf(SCRIPT, 'order', a.order, ['zeroboot-first', 'ref-first']);
oneOf(SCRIPT, 'dhcp-thread', a['dhcp-thread'], ['on', 'off']);
if (a['cpu-prof'] && a.only === 'reference') refuseFlag(SCRIPT, '--cpu-prof profiles zeroboot; it cannot go with --only reference');
const CLIENTS = Number(a.clients);
const HERE = new URL('.', import.meta.url).pathname;
const ROOT_DIR = join(HERE, '..');
const IPXE = '/usr/lib/ipxe/undionly.kpxe';
const MASK = '255.255.0.0';
/** Each side's network: server address, client host address, the pool (also the clients' local route). */
const NET = {
  zeroboot: { net: '10.72', server: '10.72.0.1', host: '10.72.0.2/16' },
  reference: { net: '10.73', server: '10.73.0.1', host: '10.73.0.2/16' },
};

interface Side {
  name: 'zeroboot' | 'reference';
  pids: number[];
  /** The servers' namespace (zeroboot's management port is on its loopback). */
  serverNs: Netns;
  host: Netns;
  httpBase: string;
  report: boolean;
}

/** CPU seconds of a process (or, with `tid`, of one of its threads). */
async function cpuOf(pid: number, tid?: number): Promise<number> {
  return cpuSeconds(await readStat(pid, tid));
}

async function procStat(pid: number): Promise<{ cpu: number; mainCpu: number; hwmKiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return { cpu: await cpuOf(pid), mainCpu: await cpuOf(pid, pid), hwmKiB: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) };
}

function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Random (incompressible) files: kernel, initrd, a layer tree; the iPXE binary; the reference's static scripts. */
async function prepare(root: string): Promise<{ layer: { fl: string; chunks: string[] } }> {
  await mkdir(join(root, 'images'), { recursive: true });
  await mkdir(join(root, 'tftp'), { recursive: true });
  await mkdir(join(root, 'flists'), { recursive: true });
  await copyFile(IPXE, join(root, 'tftp', 'undionly.kpxe'));
  await writeFile(join(root, 'images', 'vmlinuz'), randomBytes(Number(a['kernel-mib']) << 20));
  await writeFile(join(root, 'images', 'initrd.img'), randomBytes(Number(a['initrd-mib']) << 20));
  const tree = join(root, 'layer-tree');
  await mkdir(tree, { recursive: true });
  const mib = Number(a['layer-mib']);
  for (let i = 0; i < mib * 4; i++) await writeFile(join(tree, `f${i}`), randomBytes(256 << 10));
  const fl = join(root, 'flists', 'layer.fl');
  const pack = await runCommand(join(ROOT_DIR, 'bin/zeroboot'), ['flist', 'pack', tree, '-o', fl, '--store', `dir://${join(root, 'chunks')}`], { timeout: 300_000 });
  if (pack.code !== 0) throw new Error(`flist pack failed: ${pack.stderr.trim()}`);
  const chunks: string[] = [];
  for (const d of await readdir(join(root, 'chunks'))) for (const c of await readdir(join(root, 'chunks', d))) chunks.push(`chunks/${d}/${c}`);
  for (const n of ['zeroboot', 'reference'] as const) {
    const base = `http://${NET[n].server}:8080`;
    // The reference serves static scripts: the same chain and the same kernel/initrd lines zeroboot renders.
    await mkdir(join(root, n), { recursive: true });
    await writeFile(join(root, n, 'boot.ipxe'), `#!ipxe\nchain ${base}/ipxe?mac=\${net0/mac:hexhyp}\n`);
    await writeFile(join(root, n, 'ipxe'), `#!ipxe\nimgfetch --name kernel ${base}/images/vmlinuz console=ttyS0\nimgselect kernel\ninitrd --name initrd0 ${base}/images/initrd.img\nboot\n`);
  }
  return { layer: { fl: relative(root, fl), chunks } };
}

async function startZeroboot(ns: Netns, root: string, dir: string): Promise<ChildProcess> {
  const n = NET.zeroboot;
  const config = {
    server: {
      interfaces: ['br0'],
      address: n.server,
      dhcp: { mode: 'full', thread: a['dhcp-thread'] !== 'off', leasesFile: join(dir, 'leases.json'), pool: { start: `${n.net}.128.1`, end: `${n.net}.255.254`, subnetMask: MASK, leaseSeconds: 3600 } },
      tftp: { port: 69, maxTransfers: Number(a['tftp-max']) },
      http: { port: 8080, maxConnections: 4 * CLIENTS + 64 },
      management: { host: '127.0.0.1', port: 8081 },
      ipxeDir: join(root, 'tftp'),
      stateDir: dir,
    },
    flists: { dir: join(root, 'flists'), store: `dir://${join(root, 'chunks')}` },
    store: [{ prefix: 'images', dir: join(root, 'images') }],
    profiles: [{ name: 'storm', kernel: 'images/vmlinuz', initrd: 'images/initrd.img', args: { console: 'ttyS0' } }],
    groups: [{ name: 'all', profile: 'storm', selector: {} }],
  };
  const file = join(dir, 'zeroboot.yaml');
  await writeFile(file, stringify(config));
  const prof = a['cpu-prof'] ? `NODE_OPTIONS="--cpu-prof --cpu-prof-dir=${a['cpu-prof']}" ` : '';
  const child = ns.spawn('sh', ['-c', `ulimit -n 65536; ${prof}exec "$0" serve --config "$1"`, join(ROOT_DIR, 'bin/zeroboot'), file]);
  await waitForOutput(child, /zeroboot serve: listening/, 120_000);
  // Its log goes to a file in the run's folder, shown when --log is given.
  const log = createWriteStream(join(dir, 'zeroboot.log'));
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
}

async function startReference(ns: Netns, root: string, dir: string): Promise<ChildProcess[]> {
  const n = NET.reference;
  const dnsmasq = ns.spawn('dnsmasq', [
    '--no-daemon', '--port=0', '--bind-interfaces', '--interface=br1', `--dhcp-range=${n.net}.128.1,${n.net}.255.254,${MASK},1h`,
    '--dhcp-authoritative', '--no-ping', '--dhcp-lease-max=70000', '--quiet-dhcp', `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, '--pid-file=',
    '--enable-tftp', `--tftp-root=${join(root, 'tftp')}`, `--tftp-max=${a['tftp-max']}`, '--quiet-tftp',
    '--dhcp-userclass=set:ipxe,iPXE', '--dhcp-boot=tag:!ipxe,undionly.kpxe', `--dhcp-boot=tag:ipxe,http://${n.server}:8080/boot.ipxe`,
  ]);
  await waitForOutput(dnsmasq, /TFTP root is/, 30_000);
  dnsmasq.stdout!.resume();
  dnsmasq.stderr!.resume();
  // nginx's root: the static scripts at the top, the images, flists and chunks beside them.
  const web = join(dir, 'www');
  await mkdir(web, { recursive: true });
  for (const f of ['boot.ipxe', 'ipxe']) await copyFile(join(root, 'reference', f), join(web, f));
  for (const d of ['images', 'flists', 'chunks']) await runCommand('ln', ['-s', join(root, d), join(web, d)]);
  // nginx's workers drop to an unprivileged user: the run's folders (mkdtemp makes them 0700) must be readable.
  await runCommand('chmod', ['-R', 'a+rX', join(dir, '..')]);
  const nginx = await startNginx(ns, { dir: join(dir, 'nginx'), root: web, address: n.server, port: 8080, connections: 4 * CLIENTS + 64 }, 'boot.ipxe');
  return [dnsmasq, nginx];
}

async function storm(side: Side, layer: { fl: string; chunks: string[] }, macPrefix: string): Promise<void> {
  const plan: StormPlan & { httpBase: string } = {
    clients: CLIENTS,
    macPrefix,
    spreadMs: Number(a.spread),
    blksize: 1432,
    layer,
    report: side.report,
    deadlineMs: Number(a.deadline) * 1000,
    httpBase: side.httpBase,
  };
  // The management port's event-loop delay covers the time since the previous scrape: this one starts the window.
  if (side.name === 'zeroboot') await serverMetrics(side.serverNs);
  const drops = [await udpDrops(side.serverNs), await udpDrops(side.host)];
  const before = await Promise.all(side.pids.map(procStat));
  const client = join(HERE, 'boot-storm-client.ts');
  const run = await side.host.exec('sh', ['-c', `ulimit -n 65536; exec "${process.execPath}" --disable-warning=ExperimentalWarning "$0" "$1"`, client, JSON.stringify(plan)], { timeout: plan.deadlineMs + 60_000 });
  if (run.code !== 0) throw new Error(`${side.name}: the storm's clients failed (exit ${run.code}): ${run.stderr.trim().slice(-1500)}`);
  const after = await Promise.all(side.pids.map(procStat));
  const result = JSON.parse(run.stdout) as StormResult & { wallMs: number };
  const metrics = side.name === 'zeroboot' ? await serverMetrics(side.serverNs) : undefined;
  const delay = metrics?.delay;
  summarise(side, result, after.reduce((s, x, i) => s + x.cpu - before[i].cpu, 0), after.reduce((s, x) => s + x.hwmKiB, 0));
  if (side.name === 'zeroboot') console.log(`  of which the main thread (the event loop) ${(after[0].mainCpu - before[0].mainCpu).toFixed(1)} s, ${((1000 * (after[0].cpu - before[0].cpu)) / CLIENTS).toFixed(1)} ms CPU per boot`);
  if (delay) console.log(`  event-loop delay during the storm: p50 ${delay.p50} ms, p99 ${delay.p99} ms, max ${delay.max} ms`);
  if (metrics?.replies) console.log(`  DHCP answer time by the server's own clock (request read to reply sent): ${metrics.replies}`);
  console.log(`  UDP datagrams dropped at full receive buffers: servers' namespace ${(await udpDrops(side.serverNs)) - drops[0]}, clients' ${(await udpDrops(side.host)) - drops[1]}; ` +
    `load generator loop delay p99 ${result.loopMs.p99.toFixed(0)} ms, max ${result.loopMs.max.toFixed(0)} ms`);
}

/** UDP RcvbufErrors of a namespace (/proc/net/snmp is per namespace). */
async function udpDrops(ns: Netns): Promise<number> {
  const r = await ns.exec('cat', ['/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  return Number(lines[1]?.split(/\s+/)[names.indexOf('RcvbufErrors')] ?? 0);
}

/**
 * From zeroboot's /metrics (the management port, inside the namespace): its event-loop delay (ms) since the
 * previous scrape, and its own DHCP answer times (zeroboot_dhcp_reply_seconds, from reading a request to its
 * reply) as the share of OFFERs and ACKs under each bucket bound, cumulative since the server started.
 */
async function serverMetrics(ns: Netns): Promise<{ delay: Record<string, string>; replies: string } | undefined> {
  const r = await ns.exec('curl', ['-sS', '--max-time', '30', 'http://127.0.0.1:8081/metrics'], { timeout: 60_000 }).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  const samples = parsePromText(r.stdout);
  const delay: Record<string, string> = {};
  for (const s of samples) if (s.name === 'zeroboot_event_loop_delay_seconds') delay[s.labels.stat] = (s.value * 1000).toFixed(1);
  // Before the first reply of a type there are no samples of it.
  const bucket = (type: string, le: string) => samples.find((s) => s.name === 'zeroboot_dhcp_reply_seconds_bucket' && s.labels.type === type && s.labels.le === le)?.value ?? 0;
  const parts: string[] = [];
  for (const type of ['offer', 'ack']) {
    const all = bucket(type, '+Inf');
    if (all === 0) continue;
    parts.push(`${type} ${all}: ${['0.01', '0.025', '0.05'].map((le) => `${((100 * bucket(type, le)) / all).toFixed(1)}% within ${Number(le) * 1000} ms`).join(', ')}`);
  }
  return { delay, replies: parts.join('; ') };
}

interface Summary {
  ok: number;
  perMin: number;
}
const summaries = new Map<string, Summary>();

function summarise(side: Side, r: StormResult & { wallMs: number }, cpu: number, hwmKiB: number): void {
  const ok = r.clients.filter((c) => c.ok);
  const failed = r.clients.filter((c) => !c.ok);
  const start = Math.min(...r.clients.map((c) => c.startedAt));
  // Boots/min over the stages both sides serve: until the end of the layer stage.
  const served = (c: ClientResult) => c.endedAt - (c.stages.report ?? 0);
  const end = Math.max(...ok.map(served));
  const perMin = ok.length ? (ok.length * 60_000) / (end - start) : 0;
  summaries.set(side.name, { ok: ok.length, perMin });
  const dhcp = r.clients.flatMap((c) => c.dhcpMs);
  console.log(`\n${side.name}: ${ok.length}/${r.clients.length} booted, ${failed.length} failed, ${perMin.toFixed(0)} boots/min (to the layer), wall ${(r.wallMs / 1000).toFixed(1)} s, ` +
    `${(r.bytes / 2 ** 30).toFixed(2)} GiB moved, retries ${r.clients.reduce((s, c) => s + c.retries, 0)}`);
  console.log(`  server CPU ${cpu.toFixed(1)} s, peak RSS ${(hwmKiB / 1024).toFixed(0)} MiB${side.name === 'reference' ? ' (dnsmasq + nginx master + worker)' : ''}`);
  const dhcpServer = r.clients.flatMap((c) => c.dhcpServerMs);
  console.log(`  DHCP exchange (DISCOVER to ACK): p50 ${pct(dhcp, 50).toFixed(1)} ms, p99 ${pct(dhcp, 99).toFixed(1)} ms, max ${Math.max(...dhcp).toFixed(1)} ms`);
  console.log(`  DHCP server latency (DISCOVER to OFFER + REQUEST to ACK): p50 ${pct(dhcpServer, 50).toFixed(1)} ms, p99 ${pct(dhcpServer, 99).toFixed(1)} ms, max ${Math.max(...dhcpServer).toFixed(1)} ms`);
  const row = (s: Stage) => {
    const v = ok.map((c) => c.stages[s]).filter((x): x is number => x !== undefined);
    return v.length ? `  ${s.padEnd(9)} p50 ${pct(v, 50).toFixed(0).padStart(6)} ms  p99 ${pct(v, 99).toFixed(0).padStart(6)} ms` : undefined;
  };
  for (const line of STAGES.map(row)) if (line) console.log(line);
  const reasons = new Map<string, number>();
  for (const c of failed) reasons.set(c.error ?? '?', (reasons.get(c.error ?? '?') ?? 0) + 1);
  for (const [why, n] of [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 5)) console.log(`  failed x${n}: ${why.slice(0, 200)}`);
}

async function clientHost(ns: Netns, bridge: string, n: { net: string; host: string }): Promise<Netns> {
  const h = await ns.host(bridge, { cidr: n.host });
  // Any pool address can be bound by the clients (and is answered for in ARP): the pool is local here.
  await h.ip('route', 'add', 'local', `${n.net}.128.0/17`, 'dev', 'lo');
  await h.ip('route', 'add', '255.255.255.255/32', 'dev', 'eth0');
  return h;
}

async function main(): Promise<void> {
  const tmp = await tempDir('zb-bench-storm-');
  const ns = await Netns.create('zbs');
  const unhook = removeOnSignal(process.env.KEEP ? [ns] : [folder(tmp.dir), ns]);
  try {
    const root = join(tmp.dir, 'root');
    const { layer } = await prepare(root);
    await ns.bridge('br0', `${NET.zeroboot.server}/16`);
    await ns.bridge('br1', `${NET.reference.server}/16`);
    const sides: Side[] = [];
    const zbDir = join(tmp.dir, 'zeroboot');
    await mkdir(zbDir, { recursive: true });
    const zb = a.only === 'reference' ? undefined : await startZeroboot(ns, root, zbDir);
    if (zb) sides.push({ name: 'zeroboot', pids: [zb.pid!], serverNs: ns, host: await clientHost(ns, 'br0', NET.zeroboot), httpBase: `http://${NET.zeroboot.server}:8080`, report: true });
    if (a.only !== 'zeroboot') {
      const refDir = join(tmp.dir, 'reference');
      await mkdir(refDir, { recursive: true });
      const ref = await startReference(ns, root, refDir);
      const nginxPids = (await readFile(join(refDir, 'nginx', 'nginx.pid'), 'utf8')).trim();
      const workers = (await runCommand('pgrep', ['-P', nginxPids])).stdout.split('\n').filter(Boolean).map(Number);
      sides.push({ name: 'reference', pids: [ref[0].pid!, Number(nginxPids), ...workers], serverNs: ns, host: await clientHost(ns, 'br1', NET.reference), httpBase: `http://${NET.reference.server}:8080`, report: false });
    }
    console.log(`boot storm: ${CLIENTS} clients over ${a.spread} ms; kernel ${a['kernel-mib']} MiB, initrd ${a['initrd-mib']} MiB, layer ${a['layer-mib']} MiB (${layer.chunks.length} chunks); TFTP cap ${a['tftp-max']} both sides`);
    const order = a.order === 'ref-first' ? [...sides].reverse() : sides;
    for (const [i, side] of order.entries()) {
      await storm(side, layer, (0x50 + i).toString(16));
      // The kernel's ARP table is one for every namespace (1,024 entries by default): the first side's 1,000
      // clients, left in it, would make the second side's replies to new addresses fail.
      await ns.ip('neigh', 'flush', 'all');
      await side.host.ip('neigh', 'flush', 'all');
    }
    const z = summaries.get('zeroboot');
    const r = summaries.get('reference');
    if (zb && a['cpu-prof']) {
      // The profile is written when the server exits on its own.
      const exited = new Promise((res) => zb.once('exit', res));
      zb.kill('SIGTERM');
      await exited;
    }
    if (z && r) console.log(`\nboots/min: zeroboot ${z.perMin.toFixed(0)}  dnsmasq+nginx ${r.perMin.toFixed(0)}  ratio ${(z.perMin / r.perMin).toFixed(2)}x (failed: zeroboot ${CLIENTS - z.ok}, reference ${CLIENTS - r.ok})`);
  } finally {
    await ns.destroy();
    if (process.env.KEEP) console.log(`kept ${tmp.dir}`);
    else await tmp.remove();
    unhook();
  }
}

await main();
