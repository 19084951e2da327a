// TFTP throughput, side by side in one network namespace (loopback inside it):
// tftpd-hpa, dnsmasq and zeroboot's server, each downloaded with atftp.
// A 20 MiB file at 512-byte blocks, at blksize 1468, and ours with
// windowsize 16 (the others do not implement RFC 7440). Each case runs
// several times; the median is reported, with the client start-up cost
// (a 1-byte download, same server) subtracted.
//   node bench/tftp.ts [--runs N] [--mib N]
import { chmod, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Netns } from '../qemu/netns.ts';
import { waitForOutput } from '../lib/process.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, mib: { type: 'string', default: '20' } } });
const RUNS = Number(values.runs);
const MIB = Number(values.mib);
const HOST = '10.99.0.1';
const entry = fileURLToPath(new URL('../harness/tftp-server-entry.ts', import.meta.url));

interface Server {
  name: string;
  port: number;
}
interface Case {
  label: string;
  server: Server;
  options: string[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bench-tftp-'));
  const out = await mkdtemp(path.join(tmpdir(), 'zb-bench-tftp-out-'));
  const ns = await Netns.create('zbbench');
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
    const ours = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry, '--address', HOST, '--port', '6971', '--dir', dir, '--log-level', 'warn']);
    await waitForOutput(ours, /tftp ready/);
    await waitForOutput(dnsmasq, /TFTP root is/).catch(() => undefined);
    const servers: Record<string, Server> = {
      hpa: { name: 'tftpd-hpa', port: 6970 },
      dnsmasq: { name: 'dnsmasq', port: 69 },
      ours: { name: 'zeroboot', port: 6971 },
    };

    async function fetch(server: Server, file: string, options: string[], dest: string): Promise<number> {
      const args = [...options.flatMap((o) => ['--option', o]), '-g', '-r', file, '-l', dest, HOST, String(server.port)];
      const t0 = process.hrtime.bigint();
      const r = await ns.exec('atftp', args, { timeout: 120_000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.code !== 0) throw new Error(`atftp from ${server.name} failed: ${r.stderr || r.stdout}`);
      return ms;
    }

    // Cases of a group take turns run by run, so drift in machine speed hits them alike.
    async function measureGroup(cases: Case[]): Promise<number[]> {
      const base = cases.map(() => [] as number[]);
      const full = cases.map(() => [] as number[]);
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
      return cases.map((_, k) => MIB / (Math.max(1, median(full[k]!) - median(base[k]!)) / 1000));
    }

    const blk = 'blksize 1468';
    const groups: { title: string; cases: Case[] }[] = [
      {
        title: '512-byte blocks (no options)',
        cases: [
          { label: 'tftpd-hpa', server: servers.hpa!, options: [] },
          { label: 'dnsmasq', server: servers.dnsmasq!, options: [] },
          { label: 'zeroboot', server: servers.ours!, options: [] },
        ],
      },
      {
        title: 'blksize 1468',
        cases: [
          { label: 'tftpd-hpa', server: servers.hpa!, options: [blk] },
          { label: 'dnsmasq', server: servers.dnsmasq!, options: [blk] },
          { label: 'zeroboot', server: servers.ours!, options: [blk] },
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
      const speeds = await measureGroup(g.cases);
      for (const [k, c] of g.cases.entries()) {
        const mibps = speeds[k]!;
        results.set(`${g.title}/${c.label}`, mibps);
        console.log(`  ${c.label.padEnd(24)} ${mibps.toFixed(1).padStart(7)} MiB/s`);
      }
    }
    const r = (k: string) => results.get(k)!;
    const best512 = Math.max(r('512-byte blocks (no options)/tftpd-hpa'), r('512-byte blocks (no options)/dnsmasq'));
    const best1468 = Math.max(r('blksize 1468/tftpd-hpa'), r('blksize 1468/dnsmasq'));
    console.log('\nratios (zeroboot / best of tftpd-hpa and dnsmasq)');
    console.log(`  512-byte blocks, equal options   ${(r('512-byte blocks (no options)/zeroboot') / best512).toFixed(2)}x (goal >= 1.0)`);
    console.log(`  blksize 1468, equal options      ${(r('blksize 1468/zeroboot') / best1468).toFixed(2)}x (goal >= 1.0)`);
    console.log(`  blksize 1468 + windowsize 16     ${(r('blksize 1468/zeroboot windowsize 16') / best1468).toFixed(2)}x (goal >= 1.3)`);
    console.log(`  512 + windowsize 16 vs best 512  ${(r('512-byte blocks, windowsize 16/zeroboot windowsize 16') / best512).toFixed(2)}x`);
  } finally {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  }
}

await main();
