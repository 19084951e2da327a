// zdb throughput with redis-benchmark, side by side in one run: our server
// (`zeroboot zdb`), the reference 0-db when given (--reference PATH or
// ZDB_REFERENCE; Debian has no 0-db package, build v2.0.7 with `make
// release`) and optionally redis-server, all on loopback: 50 clients, SET and
// GET, without and with pipelining (-P 16). Keys are random over 1,000,000
// (-r) so every SET is a real write (0-db answers an unchanged value with nil
// without writing). The machine may be shared: each figure is the median of
// --rounds runs, and the servers take turns within each round, the first of
// one round going last in the next.
//   node bench/zdb.ts [--reference PATH] [--rounds 3] [--sizes 100,4096] [--requests N] [--pipelined-requests N] [--sync] [--redis]
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { freePort, waitListening } from '../harness/listening.ts';
import { startReference, stopChild } from '../harness/zdb-reference.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    'pipelined-requests': { type: 'string', default: '400000' },
    rounds: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '100' },
    sync: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    reference: { type: 'string', default: process.env.ZDB_REFERENCE },
  },
});
const CLI = fileURLToPath(new URL('../cli/zeroboot.ts', import.meta.url));
const CLIENTS = 50;

function fail(message: string): never {
  console.error(`bench/zdb.ts: ${message}`);
  process.exit(2);
}

const rounds = Number(values.rounds);
const sizes = values.sizes.split(',').map(Number);
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a positive integer, not ${values.rounds}`);
if (sizes.some((s) => !Number.isInteger(s) || s < 1)) fail(`--sizes must be byte counts separated by commas, not ${values.sizes}`);

function benchArgs(port: number, test: 'set' | 'get', size: number, pipeline: number, requests: number): string[] {
  return ['-h', '127.0.0.1', '-p', String(port), '-c', String(CLIENTS), '-n', String(requests), '-r', '1000000', '-d', String(size), '-P', String(pipeline), '-t', test, '--csv'];
}

async function benchmark(port: number, test: 'set' | 'get', size: number, pipeline: number, requests: number): Promise<number> {
  const { stdout } = await run('redis-benchmark', benchArgs(port, test, size, pipeline, requests), { maxBuffer: 1 << 20 });
  const line = stdout.split('\n').find((l) => l.startsWith(`"${test.toUpperCase()}"`));
  if (!line) throw new Error(`no result in redis-benchmark output:\n${stdout}`);
  return Number(JSON.parse(`[${line}]`)[1]);
}

interface Server {
  name: string;
  port: number;
  stop(): Promise<void>;
}

async function startProcess(name: string, command: string, args: string[], port: number): Promise<Server> {
  const child: ChildProcess = spawn(command, args, { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const stop = () => stopChild(child, exited, 'SIGINT', 10000);
  try {
    await waitListening(port, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name, port, stop };
}

function dirs(dir: string): string[] {
  return ['--data', path.join(dir, 'data'), '--index', path.join(dir, 'index'), ...(values.sync ? ['--sync'] : [])];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bench-zdb-'));
  const servers: Server[] = [];
  try {
    let port = await freePort();
    servers.push(await startProcess('zeroboot zdb', process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'zdb', '--listen', '127.0.0.1', '--port', String(port), ...dirs(path.join(dir, 'ours'))], port));
    if (values.reference) {
      const ref = await startReference(values.reference, path.join(dir, 'reference'), values.sync ? ['--sync'] : []);
      servers.push({ name: '0-db (reference)', port: ref.port, stop: () => ref.stop() });
    }
    if (values.redis) {
      port = await freePort();
      servers.push(await startProcess('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], port));
    }
    const [ours, ...others] = servers;
    if (others.length === 0) console.log('no --reference (or ZDB_REFERENCE) and no --redis: ours alone, no ratio');
    console.log(`redis-benchmark ${benchArgs(0, 'set', sizes[0], 1, Number(values.requests)).join(' ').replace(/-p 0 /, '-p PORT ').replace(/-t set/, '-t set|get')} (-P 16: -n ${values['pipelined-requests']})`);
    console.log(`${CLIENTS} clients, loopback${values.sync ? ', 0-db servers with --sync' : ''}; requests/s, median of ${rounds} rounds, servers alternating\n`);
    const header = ['test', ours.name, ...others.flatMap((o) => [o.name, `ours / ${o.name}`])];
    const rows: string[][] = [];
    for (const pipeline of [1, 16]) {
      const n = Number(pipeline === 1 ? values.requests : values['pipelined-requests']);
      for (const size of sizes) {
        for (const test of ['set', 'get'] as const) {
          const results = new Map<Server, number[]>(servers.map((s) => [s, []]));
          for (let r = 0; r < rounds; r++) {
            const order = servers.map((_, i) => servers[(i + r) % servers.length]);
            for (const s of order) results.get(s)!.push(await benchmark(s.port, test, size, pipeline, n));
          }
          const mine = median(results.get(ours)!);
          const row = [`${test.toUpperCase()} ${size} B -P ${pipeline}`, mine.toFixed(0)];
          for (const o of others) row.push(median(results.get(o)!).toFixed(0), `${(mine / median(results.get(o)!)).toFixed(2)}x`);
          rows.push(row);
          const runs = servers.map((s) => `${s.name}: ${results.get(s)!.map((x) => x.toFixed(0)).join(' ')}`).join('; ');
          console.log(`${row.join('\t')}\t(${runs})`);
        }
      }
    }
    console.log(`\n| ${header.join(' | ')} |`);
    console.log(`|${header.map(() => '---').join('|')}|`);
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } finally {
    for (const s of servers) await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
