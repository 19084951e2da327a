// TFTP throughput, side by side in one network namespace (loopback inside it):
// tftpd-hpa, dnsmasq and zeroboot's server, each downloaded with atftp.
// A 20 MiB file at 512-byte blocks, at blksize 1468, and ours with
// windowsize 16 (the others do not implement RFC 7440). Each case runs
// several times; the median is reported, with the client start-up cost
// (a 1-byte download, same server) subtracted. For the servers that stay one
// process (zeroboot, dnsmasq) it also prints their CPU time per block, which a
// loaded machine disturbs far less than the throughput. Ours runs twice: with
// the native data path (the addon must be built) and with the JavaScript one.
//   node bench/tftp.ts [--runs N] [--mib N]
import { chmod, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Netns } from '../qemu/netns.ts';
import { folder, removeOnSignal } from '../harness/remove-on-signal.ts';
import { waitForOutput } from '../lib/process.ts';
import { cpuSeconds, readStatSync } from '../harness/proc-stat.ts';

const USAGE = `usage: node bench/tftp.ts [--runs N] [--mib N]
  --runs N   downloads per case; the median counts (default 5)
  --mib N    size of the test file in MiB (default 20)
Prints MiB/s per server and case, zeroboot's ratio to the best of tftpd-hpa
and dnsmasq, and the server CPU time per block (user + system time of the server
process from /proc/PID/stat, ended threads included; tftpd-hpa forks a
process per transfer, so it has none).`;

function options(): { runs: number; mib: number } {
  try {
    const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, mib: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      console.log(USAGE);
      process.exit(0);
    }
    const runs = Number(values.runs);
    const mib = Number(values.mib);
    if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(mib) || mib < 1) throw new Error('--runs and --mib take positive integers');
    return { runs, mib };
  } catch (e) {
    console.error(`bench/tftp.ts: ${(e as Error).message.split('\n')[0]} (--help for usage)`);
    process.exit(2);
  }
}

const { runs: RUNS, mib: MIB } = options();
const HOST = '10.99.0.1';
const entry = fileURLToPath(new URL('../harness/tftp-server-entry.ts', import.meta.url));

interface Server {
  name: string;
  port: number;
  /** Process whose CPU time counts; unset when the work happens in forked children. */
  pid?: number;
}
interface Case {
  label: string;
  server: Server;
  options: string[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux). */

/**
 * CPU nanoseconds of a process, threads that have ended included: the native
 * TFTP data path runs each transfer on a thread that ends with it, which a
 * sum over /proc/PID/task would miss. Counted in 10 ms ticks, so a 20 MiB
 * download (hundreds of ms) is measured to about 2%; time stolen by the
 * hypervisor is not counted.
 */
function cpuNs(pid: number): number {
  return cpuSeconds(readStatSync(pid)) * 1e9;
}

/** Blocks of a download of `bytes` at `blksize`, counting the final short (possibly empty) one. */
const blocksOf = (bytes: number, blksize: number) => Math.floor(bytes / blksize) + 1;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bench-tftp-'));
  const out = await mkdtemp(path.join(tmpdir(), 'zb-bench-tftp-out-'));
  const ns = await Netns.create('zbbench');
  const unhook = removeOnSignal([folder(dir), folder(out), ns]);
  try {
    const data = randomBytes(MIB * 1024 * 1024);
    const digest = createHash('sha256').update(data).digest('hex');
    await writeFile(path.join(dir, 'big.bin'), data);
    await writeFile(path.join(dir, 'tiny.bin'), Buffer.from('x'));
    // tftpd-hpa drops to the unprivileged "tftp" user and must be able to read.
    await chmod(dir, 0o755);

    // A non-loopback address: tftpd-hpa resolves its bind address with
    // AI_ADDRCONFIG, which fails when only loopback is configured. Traffic to
    // it still goes over the namespace's loopback.
    await ns.bridge('bench0', `${HOST}/24`);
    ns.spawn('in.tftpd', ['-L', '-s', '-a', `${HOST}:6970`, dir]);
    const dnsmasq = ns.spawn('dnsmasq', ['--enable-tftp', `--tftp-root=${dir}`, '--port', '0', '-d', '--quiet-tftp', `--listen-address=${HOST}`, '--bind-interfaces', '--pid-file=', '--conf-file=/dev/null']);
    const oursAt = (port: number, dataPath: string) =>
      ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry, '--address', HOST, '--port', String(port), '--dir', dir, '--log-level', 'warn', '--data-path', dataPath]);
    const ours = oursAt(6971, 'native');
    const oursJs = oursAt(6972, 'js');
    await waitForOutput(ours, /tftp ready/);
    await waitForOutput(oursJs, /tftp ready/);
    await waitForOutput(dnsmasq, /TFTP root is/).catch(() => undefined);
    const servers: Record<string, Server> = {
      hpa: { name: 'tftpd-hpa', port: 6970 },
      dnsmasq: { name: 'dnsmasq', port: 69, pid: dnsmasq.pid },
      ours: { name: 'zeroboot', port: 6971, pid: ours.pid },
      oursJs: { name: 'zeroboot (JS data path)', port: 6972, pid: oursJs.pid },
    };

    /** Wall milliseconds of one download, and the server's CPU nanoseconds during it (NaN when not measurable). */
    async function fetch(server: Server, file: string, options: string[], dest: string): Promise<{ ms: number; cpu: number }> {
      const args = [...options.flatMap((o) => ['--option', o]), '-g', '-r', file, '-l', dest, HOST, String(server.port)];
      const cpu0 = server.pid ? cpuNs(server.pid) : NaN;
      const t0 = process.hrtime.bigint();
      const r = await ns.exec('atftp', args, { timeout: 120_000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = server.pid ? cpuNs(server.pid) - cpu0 : NaN;
      if (r.code !== 0) throw new Error(`atftp from ${server.name} failed: ${r.stderr || r.stdout}`);
      return { ms, cpu };
    }

    // Cases of a group take turns run by run, so drift in machine speed hits them alike.
    async function measureGroup(cases: Case[]): Promise<{ mibps: number; usPerBlock: number }[]> {
      const base = cases.map(() => [] as { ms: number; cpu: number }[]);
      const full = cases.map(() => [] as { ms: number; cpu: number }[]);
      for (let i = 0; i < RUNS; i++) {
        for (const [k, c] of cases.entries()) {
          base[k]!.push(await fetch(c.server, 'tiny.bin', c.options, path.join(out, 'tiny')));
          const dest = path.join(out, 'big');
          full[k]!.push(await fetch(c.server, 'big.bin', c.options, dest));
          const got = createHash('sha256').update(await readFile(dest)).digest('hex');
          if (got !== digest) throw new Error(`${c.label}: wrong sha256 from ${c.server.name}`);
          await rm(dest);
        }
      }
      return cases.map((c, k) => {
        const ms = median(full[k]!.map((f) => f.ms)) - median(base[k]!.map((b) => b.ms));
        const cpu = median(full[k]!.map((f) => f.cpu)) - median(base[k]!.map((b) => b.cpu));
        const blksize = Number(c.options.find((o) => o.startsWith('blksize '))?.slice(8) ?? 512);
        return { mibps: MIB / (Math.max(1, ms) / 1000), usPerBlock: cpu / 1000 / blocksOf(MIB * 1024 * 1024, blksize) };
      });
    }

    const blk = 'blksize 1468';
    const groups: { title: string; cases: Case[] }[] = [
      {
        title: '512-byte blocks (no options)',
        cases: [
          { label: 'tftpd-hpa', server: servers.hpa!, options: [] },
          { label: 'dnsmasq', server: servers.dnsmasq!, options: [] },
          { label: 'zeroboot', server: servers.ours!, options: [] },
          { label: 'zeroboot JS data path', server: servers.oursJs!, options: [] },
        ],
      },
      {
        title: 'blksize 1468',
        cases: [
          { label: 'tftpd-hpa', server: servers.hpa!, options: [blk] },
          { label: 'dnsmasq', server: servers.dnsmasq!, options: [blk] },
          { label: 'zeroboot', server: servers.ours!, options: [blk] },
          { label: 'zeroboot JS data path', server: servers.oursJs!, options: [blk] },
          { label: 'zeroboot windowsize 16', server: servers.ours!, options: [blk, 'windowsize 16'] },
        ],
      },
      {
        title: '512-byte blocks, windowsize 16',
        cases: [{ label: 'zeroboot windowsize 16', server: servers.ours!, options: ['blksize 512', 'windowsize 16'] }],
      },
    ];

    console.log(`TFTP ${MIB} MiB, atftp client, loopback in namespace ${ns.name}, median of ${RUNS} runs`);
    const results = new Map<string, number>();
    for (const g of groups) {
      console.log(`\n${g.title}`);
      const measured = await measureGroup(g.cases);
      for (const [k, c] of g.cases.entries()) {
        const { mibps, usPerBlock } = measured[k]!;
        results.set(`${g.title}/${c.label}`, mibps);
        const cpu = Number.isNaN(usPerBlock) ? '' : `   server CPU ${usPerBlock.toFixed(2).padStart(6)} µs/block`;
        console.log(`  ${c.label.padEnd(24)} ${mibps.toFixed(1).padStart(7)} MiB/s${cpu}`);
      }
    }
    const r = (k: string) => results.get(k)!;
    const best512 = Math.max(r('512-byte blocks (no options)/tftpd-hpa'), r('512-byte blocks (no options)/dnsmasq'));
    const best1468 = Math.max(r('blksize 1468/tftpd-hpa'), r('blksize 1468/dnsmasq'));
    console.log('\nratios (zeroboot / best of tftpd-hpa and dnsmasq)');
    console.log(`  512-byte blocks, equal options   ${(r('512-byte blocks (no options)/zeroboot') / best512).toFixed(2)}x (goal >= 1.0)`);
    console.log(`  blksize 1468, equal options      ${(r('blksize 1468/zeroboot') / best1468).toFixed(2)}x (goal >= 1.0)`);
    console.log(`  JS data path: 512 / 1468         ${(r('512-byte blocks (no options)/zeroboot JS data path') / best512).toFixed(2)}x / ${(r('blksize 1468/zeroboot JS data path') / best1468).toFixed(2)}x`);
    console.log(`  blksize 1468 + windowsize 16     ${(r('blksize 1468/zeroboot windowsize 16') / best1468).toFixed(2)}x (goal >= 1.3)`);
    console.log(`  512 + windowsize 16 vs best 512  ${(r('512-byte blocks, windowsize 16/zeroboot windowsize 16') / best512).toFixed(2)}x`);
  } finally {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
    unhook();
  }
}

await main();
