// zdb throughput with redis-benchmark, side by side in one run: our server
// (`zeroboot zdb`), the reference 0-db when given (--reference PATH or
// ZDB_REFERENCE; Debian has no 0-db package, build v2.0.7 with `make
// release`) and optionally redis-server, all on loopback: 50 clients, SET and
// GET, without and with pipelining (-P 16). Keys are random over --keyspace
// (-r) and every value starts with its own random number, so every SET is a
// real write: with redis-benchmark's constant value, a SET to a key already
// holding it makes 0-db (and ours) write nothing while redis writes. GETs
// ask for random keys too, so only a part of them hit: the keys each server
// holds (DBSIZE) are printed with the share of GETs that hit, and redis's
// own hit count. The machine may be shared: each figure is the median of
// --rounds runs, and the servers take turns within each round, the first of
// one round going last in the next; each server's CPU time per request
// (from /proc, steadier than requests/s on a busy machine) is printed too.
//   node bench/zdb.ts [--reference PATH] [--rounds 3] [--sizes 100,4096] [--requests N] [--pipelined-requests N] [--keyspace N] [--sync] [--redis]
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { fileURLToPath } from 'node:url';

import { freePort, waitListening } from '../harness/listening.ts';
import { startReference, stopChild } from '../harness/zdb-reference.ts';
import { RespClient } from '../zdb/resp/client.ts';

const run = promisify(execFile);
const { values } = parseBenchArgs('bench/zdb.ts', {
  options: {
    requests: { type: 'string', default: '100000' },
    'pipelined-requests': { type: 'string', default: '400000' },
    rounds: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '100' },
    keyspace: { type: 'string', default: '1000000' },
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
const keyspace = Number(values.keyspace);
for (const name of ['rounds', 'requests', 'pipelined-requests', 'keyspace'] as const) {
  if (!/^[1-9]\d*$/.test(values[name]!)) fail(`--${name} must be a positive integer, not ${values[name]}`);
}
// __rand_int__ is 12 characters, each replaced by 12 random digits
if (sizes.some((s) => !Number.isInteger(s) || s < 12)) fail(`--sizes must be byte counts of at least 12, separated by commas, not ${values.sizes}`);

const RAND = '__rand_int__';

/** The command redis-benchmark sends: each __rand_int__ becomes its own random number below the keyspace, per request. */
function command(test: 'set' | 'get', size: number): string[] {
  const key = `key:${RAND}`;
  return test === 'set' ? ['SET', key, RAND + 'x'.repeat(size - RAND.length)] : ['GET', key];
}

function benchArgs(port: number, test: 'set' | 'get', size: number, pipeline: number, requests: number): string[] {
  return ['-h', '127.0.0.1', '-p', String(port), '-c', String(CLIENTS), '-n', String(requests), '-r', String(keyspace), '-P', String(pipeline), '--csv', ...command(test, size)];
}

async function benchmark(port: number, test: 'set' | 'get', size: number, pipeline: number, requests: number): Promise<number> {
  const { stdout } = await run('redis-benchmark', benchArgs(port, test, size, pipeline, requests), { maxBuffer: 16 << 20 });
  // a custom command's CSV row is titled with the command line itself
  const line = stdout.split('\n').find((l) => l.startsWith(`"${test.toUpperCase()} `));
  if (!line) throw new Error(`no result in redis-benchmark output:\n${stdout}`);
  return Number(JSON.parse(`[${line}]`)[1]);
}

/** Keys the server holds (DBSIZE), and for redis its GET hits and misses so far. */
async function keyStats(port: number): Promise<{ keys: number; hits?: number; misses?: number }> {
  const c = await RespClient.connect({ host: '127.0.0.1', port });
  try {
    const size = await c.command(['DBSIZE']);
    if (size.type !== 'integer') throw new Error(`DBSIZE answered ${JSON.stringify(size)}`);
    const info = await c.command(['INFO']);
    const text = info.type === 'bulk' && info.value ? info.value.toString() : '';
    const field = (name: string) => {
      const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    return { keys: Number(size.value), hits: field('keyspace_hits'), misses: field('keyspace_misses') };
  } finally {
    c.close();
  }
}

interface Server {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** CPU seconds (user + system) the process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
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
  return { name, port, pid: child.pid!, stop };
}

function dirs(dir: string): string[] {
  return ['--data', path.join(dir, 'data'), '--index', path.join(dir, 'index'), ...(values.sync ? ['--sync'] : [])];
}

/** The GETs that hit: counted by redis; for 0-db servers, expected from the keys held (random keys over the keyspace). */
function hits(before: { keys: number; hits?: number }, after: { keys: number; hits?: number }, gets: number): string {
  const share = after.keys / keyspace;
  const expected = `${after.keys} keys held, so ${(share * 100).toFixed(1)}% ~ ${Math.round(share * gets)} of ${gets}`;
  return before.hits !== undefined && after.hits !== undefined ? `${after.hits - before.hits} of ${gets} counted (${expected})` : expected;
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
      servers.push({ name: '0-db (reference)', port: ref.port, pid: ref.child.pid!, stop: () => ref.stop() });
    }
    if (values.redis) {
      port = await freePort();
      servers.push(await startProcess('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], port));
    }
    const [ours, ...others] = servers;
    if (others.length === 0) console.log('no --reference (or ZDB_REFERENCE) and no --redis: ours alone, no ratio');
    console.log(`redis-benchmark ${benchArgs(0, 'set', 12, 1, Number(values.requests)).join(' ').replace(/-p 0 /, '-p PORT ')}${'x'.repeat(3)}... | GET key:${RAND} (-P 16: -n ${values['pipelined-requests']})`);
    console.log(`${CLIENTS} clients, loopback${values.sync ? ', 0-db servers with --sync' : ''}; requests/s, median of ${rounds} rounds, servers alternating; keys and values random over ${keyspace}\n`);
    const header = ['test', ours.name, 'µs CPU/req', ...others.flatMap((o) => [o.name, 'µs CPU/req', `ours / ${o.name}`])];
    const rows: string[][] = [];
    for (const pipeline of [1, 16]) {
      const n = Number(pipeline === 1 ? values.requests : values['pipelined-requests']);
      for (const size of sizes) {
        for (const test of ['set', 'get'] as const) {
          const results = new Map<Server, number[]>(servers.map((s) => [s, []]));
          const cpu = new Map<Server, number>(servers.map((s) => [s, 0]));
          const before = new Map(await Promise.all(servers.map(async (s) => [s, await keyStats(s.port)] as const)));
          for (let r = 0; r < rounds; r++) {
            const order = servers.map((_, i) => servers[(i + r) % servers.length]);
            for (const s of order) {
              const c0 = await cpuSeconds(s.pid);
              results.get(s)!.push(await benchmark(s.port, test, size, pipeline, n));
              cpu.set(s, cpu.get(s)! + (await cpuSeconds(s.pid)) - c0);
            }
          }
          if (test === 'get') console.log(`  GET hits: ${(await Promise.all(servers.map(async (s) => `${s.name} ${hits(before.get(s)!, await keyStats(s.port), n * rounds)}`))).join('; ')}`);
          const perRequest = (s: Server) => ((cpu.get(s)! / (n * rounds)) * 1e6).toFixed(1);
          const mine = median(results.get(ours)!);
          const row = [`${test.toUpperCase()} ${size} B -P ${pipeline}`, mine.toFixed(0), perRequest(ours)];
          for (const o of others) row.push(median(results.get(o)!).toFixed(0), perRequest(o), `${(mine / median(results.get(o)!)).toFixed(2)}x`);
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
