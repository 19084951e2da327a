// zdb throughput with redis-benchmark, side by side in one run: our server
// (`zeroboot zdb`) and redis-server on loopback, 50 clients, SET and GET of
// 100-byte and 4 KiB values, without and with pipelining (-P 16). SETs use a
// 1,000,000-key space (-r) so they are real writes, not unchanged values
// (which 0-db answers with nil without writing). Debian has no 0-db package:
// give a reference binary with --reference (or ZDB_REFERENCE) to run it side
// by side; without one, the issue's figures (another machine) are printed for
// orientation only and the ratio that counts is against redis-server.
//   node bench/zdb.ts [--reference PATH] [--requests N] [--pipelined-requests N] [--sync]
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { freePort, waitListening } from '../test/helpers/zdb-process.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    'pipelined-requests': { type: 'string', default: '400000' },
    sync: { type: 'boolean', default: false },
    reference: { type: 'string', default: process.env.ZDB_REFERENCE },
  },
});
const CLI = fileURLToPath(new URL('../cli/zeroboot.ts', import.meta.url));
// From the issue: the reference 0-db on its machine, 100-byte values.
const ISSUE_FIGURES: Record<string, number> = { 'SET 1': 64000, 'GET 1': 72000, 'SET 16': 18000, 'GET 16': 18000 };

async function benchmark(port: number, test: 'set' | 'get', size: number, pipeline: number, requests: number): Promise<number> {
  const { stdout } = await run(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(port), '-c', '50', '-n', String(requests), '-r', '1000000', '-d', String(size), '-P', String(pipeline), '-t', test, '--csv'],
    { maxBuffer: 1 << 20 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith(`"${test.toUpperCase()}"`));
  if (!line) throw new Error(`no result in redis-benchmark output:\n${stdout}`);
  return Number(JSON.parse(`[${line}]`)[1]);
}

interface Server {
  name: string;
  port: number;
  child: ChildProcess;
}

async function start(name: string, command: string, args: string[], port: number): Promise<Server> {
  const child = spawn(command, args, { stdio: 'ignore' });
  await waitListening(port, child);
  return { name, port, child };
}

function zdbFlags(dir: string, port: number): string[] {
  const flags = ['--listen', '127.0.0.1', '--port', String(port), '--data', path.join(dir, 'data'), '--index', path.join(dir, 'index')];
  if (values.sync) flags.push('--sync');
  return flags;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bench-zdb-'));
  const servers: Server[] = [];
  try {
    let port = await freePort();
    servers.push(await start('zeroboot zdb', process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'zdb', ...zdbFlags(path.join(dir, 'ours'), port)], port));
    port = await freePort();
    servers.push(await start('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], port));
    if (values.reference) {
      port = await freePort();
      servers.push(await start('0-db (reference)', values.reference, zdbFlags(path.join(dir, 'reference'), port), port));
    }
    const [ours, ...others] = servers;
    console.log(`redis-benchmark, 50 clients, loopback${values.sync ? ', both 0-db servers with --sync' : ''}; requests/s`);
    const header = ['test', ours.name, ...others.flatMap((o) => [o.name, `ours / ${o.name}`])];
    if (!values.reference) header.push('0-db in the issue (ours / it)');
    const rows: string[][] = [];
    let turn = 0;
    for (const pipeline of [1, 16]) {
      const n = Number(pipeline === 1 ? values.requests : values['pipelined-requests']);
      for (const size of [100, 4096]) {
        for (const test of ['set', 'get'] as const) {
          // rotate who goes first so nobody always gets the cooler machine
          const order = servers.map((_, i) => servers[(i + turn) % servers.length]);
          turn++;
          const result = new Map<Server, number>();
          for (const s of order) result.set(s, await benchmark(s.port, test, size, pipeline, n));
          const mine = result.get(ours)!;
          const row = [`${test.toUpperCase()} ${size === 100 ? '100 B' : '4 KiB'} -P ${pipeline}`, mine.toFixed(0)];
          for (const o of others) row.push(result.get(o)!.toFixed(0), `${(mine / result.get(o)!).toFixed(2)}x`);
          if (!values.reference) {
            const fig = size === 100 ? ISSUE_FIGURES[`${test.toUpperCase()} ${pipeline}`] : undefined;
            row.push(fig ? `${fig} (${(mine / fig).toFixed(2)}x)` : '-');
          }
          rows.push(row);
          console.log(row.join('\t'));
        }
      }
    }
    console.log(`\n| ${header.join(' | ')} |`);
    console.log(`|${header.map(() => '---').join('|')}|`);
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } finally {
    for (const s of servers) s.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
