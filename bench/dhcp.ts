// DHCP full-mode throughput: perfdhcp against zeroboot and against dnsmasq,
// same namespace, same /16 pool, same offered rates, in one run. Reports
// completed 4-way exchanges (DISCOVER-OFFER-REQUEST-ACK) per second, the
// drops, and the server's CPU time per lease (perfdhcp shares the machine's
// cores, so the achieved rate alone can hide where the time goes).
//   node bench/dhcp.ts [--rates 500,1000,2000,4000] [--period 5] [--clients 50000]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns } from '../qemu/netns.ts';
import { waitForOutput } from '../lib/process.ts';
import { startDhcp, tempDir } from '../harness/dhcp-server.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const RATES = arg('rates', '500,1000,2000,4000,8000,12000').split(',').map(Number);
const PERIOD = Number(arg('period', '5'));
const CLIENTS = Number(arg('clients', '50000'));
const SERVER = '10.70.0.1';
const POOL = { start: '10.70.1.0', end: '10.70.255.254', mask: '255.255.0.0' };
const TICKS = 100; // USER_HZ on Linux

interface Step {
  rate: number;
  achieved: number;
  acks: number;
  dropsDO: number;
  dropsRA: number;
  cpuUsPerLease: number;
}

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

async function perfdhcp(host: Netns, rate: number): Promise<Omit<Step, 'cpuUsPerLease'>> {
  const r = await host.exec('perfdhcp', ['-4', '-l', 'eth0', '-r', String(rate), '-p', String(PERIOD), '-R', String(CLIENTS), '-W', '1000000'], {
    timeout: (PERIOD + 30) * 1000,
  });
  const out = r.stdout + r.stderr;
  const rateMatch = /Rate: ([\d.]+) 4-way exchanges\/second/.exec(out);
  const received = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  const drops = [...out.matchAll(/drops: (\d+)/g)].map((m) => Number(m[1]));
  if (!rateMatch || received.length < 2) throw new Error(`perfdhcp output not understood (exit ${r.code}):\n${out.slice(-2000)}`);
  return { rate, achieved: Number(rateMatch[1]), acks: received[1], dropsDO: drops[0], dropsRA: drops[1] };
}

async function measure(name: string, host: Netns, pid: number): Promise<Step[]> {
  // Warm-up (JIT, first leases, ARP) so the first measured step is not a cold start.
  await host.exec('perfdhcp', ['-4', '-l', 'eth0', '-r', '300', '-p', '2', '-R', String(CLIENTS)], { timeout: 30_000 });
  const steps: Step[] = [];
  for (const rate of RATES) {
    const before = await cpuSeconds(pid);
    const s = await perfdhcp(host, rate);
    const cpu = (await cpuSeconds(pid)) - before;
    const step = { ...s, cpuUsPerLease: s.acks ? (cpu * 1e6) / s.acks : 0 };
    steps.push(step);
    console.log(
      `${name.padEnd(9)} offered ${String(rate).padStart(6)}/s  completed ${step.achieved.toFixed(0).padStart(6)}/s  ` +
        `drops DO ${step.dropsDO} RA ${step.dropsRA}  server CPU ${step.cpuUsPerLease.toFixed(0)} us/lease`,
    );
  }
  return steps;
}

async function main(): Promise<void> {
  const ns = await Netns.create('zbb');
  const tmp = await tempDir('zb-bench-dhcp-');
  let dnsmasq: ChildProcess | undefined;
  try {
    await ns.bridge('br0', `${SERVER}/16`);
    const host = await ns.host('br0', { cidr: '10.70.0.2/16' });
    console.log(`perfdhcp: rates ${RATES.join(', ')}/s, ${PERIOD} s each, ${CLIENTS} simulated clients; pool ${POOL.start}-${POOL.end}`);

    const ours = await startDhcp(ns, tmp.dir, {
      server: {
        address: SERVER,
        interfaces: ['br0'],
        dhcp: { mode: 'full', leasesFile: join(tmp.dir, 'zeroboot-leases.json'), pool: { start: POOL.start, end: POOL.end, subnetMask: POOL.mask, leaseSeconds: 3600 } },
        stateDir: tmp.dir,
      },
    }, { quiet: true });
    const zb = await measure('zeroboot', host, ours.child.pid!);
    await ours.stop();

    dnsmasq = ns.spawn('dnsmasq', [
      '--no-daemon', '--port=0', '--bind-interfaces', '--interface=br0', `--dhcp-range=${POOL.start},${POOL.end},${POOL.mask},1h`,
      '--dhcp-authoritative', '--no-ping', '--dhcp-lease-max=70000', '--quiet-dhcp', `--dhcp-leasefile=${join(tmp.dir, 'dnsmasq.leases')}`, '--pid-file=',
    ]);
    await waitForOutput(dnsmasq, /DHCP, sockets bound exclusively to interface br0/);
    const dm = await measure('dnsmasq', host, dnsmasq.pid!);

    const best = (s: Step[]) => Math.max(...s.map((x) => x.achieved));
    const clean = (s: Step[]) => Math.max(0, ...s.filter((x) => x.dropsDO + x.dropsRA <= x.acks / 1000).map((x) => x.achieved));
    const cpu = (s: Step[]) => s.reduce((a, x) => a + x.cpuUsPerLease * x.acks, 0) / s.reduce((a, x) => a + x.acks, 0);
    console.log('');
    console.log(`leases/s, best completed:        zeroboot ${best(zb).toFixed(0)}  dnsmasq ${best(dm).toFixed(0)}  ratio ${(best(zb) / best(dm)).toFixed(2)}x`);
    const cleanRatio = clean(dm) > 0 ? `${(clean(zb) / clean(dm)).toFixed(2)}x` : 'n/a (dnsmasq dropped at every rate)';
    console.log(`leases/s, best with <0.1% drops: zeroboot ${clean(zb).toFixed(0)}  dnsmasq ${clean(dm).toFixed(0)}  ratio ${cleanRatio}`);
    console.log(`server CPU per lease (us):       zeroboot ${cpu(zb).toFixed(0)}  dnsmasq ${cpu(dm).toFixed(0)}  ratio ${(cpu(dm) / cpu(zb)).toFixed(2)}x (higher is better for zeroboot)`);
  } finally {
    if (dnsmasq?.pid) dnsmasq.kill('SIGTERM');
    await ns.destroy();
    await tmp.remove();
  }
}

await main();
