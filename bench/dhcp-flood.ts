// Timeline memory under a DHCP flood: one host sends millions of malformed
// DISCOVERs over 10,000 MACs at the full-mode server in a namespace; prints
// the server's RSS before, after each MAC got one valid DISCOVER (so every
// malformed packet lands on a machine's timeline, the costly case, bounded
// by the timeline's byte limit), and after the flood. Target: under 400 MB.
//   node bench/dhcp-flood.ts [--packets 5000000] [--macs 10000] [--unknown]
// --unknown skips the valid DISCOVERs: the MACs stay unknown and their
// packets are only counted per reason.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Netns } from '../qemu/netns.ts';
import { folder, removeOnSignal } from '../harness/remove-on-signal.ts';
import { startDhcp, tempDir } from '../harness/dhcp-server.ts';
import type { ServerHandle } from '../harness/dhcp-server.ts';
import { cpuTicks, readStat } from '../harness/proc-stat.ts';
import { parseBenchArgs, positiveInt } from '../harness/bench-args.ts';

const SCRIPT = 'bench/dhcp-flood.ts';
const { values: a } = parseBenchArgs(SCRIPT, {
  options: { packets: { type: 'string', default: '5000000' }, macs: { type: 'string', default: '10000' }, unknown: { type: 'boolean', default: false } },
});
const PACKETS = positiveInt(SCRIPT, 'packets', a.packets);
const MACS = positiveInt(SCRIPT, 'macs', a.macs, 1_000_000);
const UNKNOWN = a.unknown;
const SERVER = '10.71.0.1';
const SENDER = new URL('./dhcp-flood-sender.ts', import.meta.url).pathname;
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

async function send(host: Netns, count: number, kind: 'known' | 'malformed'): Promise<string> {
  const r = await host.exec(process.execPath, [...NODE_FLAGS, SENDER, SERVER, String(count), String(MACS), kind], { timeout: 3_600_000 });
  if (r.code !== 0) throw new Error(`sender failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

/** Waits until the server has read what was sent: its CPU time stops growing. */
async function settle(server: ServerHandle): Promise<void> {
  const cpu = async () => cpuTicks(await readStat(server.child.pid!));
  let last = await cpu();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await cpu();
    if (now - last <= 2) return;
    last = now;
  }
}

async function main(): Promise<void> {
  const ns = await Netns.create('zbf');
  const tmp = await tempDir('zb-bench-flood-');
  const unhook = removeOnSignal([folder(tmp.dir), ns]);
  try {
    await ns.bridge('br0', `${SERVER}/16`);
    const host = await ns.host('br0', { cidr: '10.71.0.2/16' });
    const server = await startDhcp(ns, tmp.dir, {
      server: {
        address: SERVER,
        interfaces: ['br0'],
        dhcp: { mode: 'full', leasesFile: join(tmp.dir, 'leases.json'), pool: { start: '10.71.1.0', end: '10.71.255.254', subnetMask: '255.255.0.0' } },
        stateDir: tmp.dir,
      },
    }, { quiet: true });
    const pid = server.child.pid!;
    console.log(`server RSS at start:                 ${(await rssMb(pid)).toFixed(0)} MB`);
    if (!UNKNOWN) {
      console.log(`valid DISCOVERs: ${await send(host, MACS, 'known')}`);
      await settle(server);
      console.log(`server RSS with ${MACS} MACs known:      ${(await rssMb(pid)).toFixed(0)} MB`);
    }
    console.log(`malformed DISCOVERs: ${await send(host, PACKETS, 'malformed')}`);
    await settle(server);
    const rss = await rssMb(pid);
    const counted = (await server.ignored()).reduce((n, c) => n + c.count, 0);
    console.log(`server RSS after ${PACKETS} malformed:  ${rss.toFixed(0)} MB (target < 400 MB) ${rss < 400 ? 'PASS' : 'FAIL'}`);
    console.log(`packets counted without an event (MAC not on the timeline): ${counted}`);
    await server.stop();
  } finally {
    await ns.destroy();
    await tmp.remove();
    unhook();
  }
}

await main();
