// Accepting signed node reports: the file registry (the default) against the
// PostgreSQL one (a cluster started here, harness/postgres.ts), side by side
// in one process. Prints wall time per report, this process's CPU time per
// report (the server's share; PostgreSQL's own CPU is apart, in its
// processes) and the ratio. Reports are signed beforehand, so signing costs
// nothing here; verification (ed25519) is in both figures. Each is run
// twice, the second pass measured (the registries then hold NODES nodes).
// Usage: node --disable-warning=ExperimentalWarning bench/registry-pg.ts [--nodes N] [--rounds R]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { startPostgres } from '../harness/postgres.ts';
import { PgState } from '../boot/state/pg.ts';
import { PgRegistry } from '../boot/state/pg-registry.ts';
import { Registry } from '../boot/registry/store.ts';
import type { NodeRegistry } from '../boot/registry/node-registry.ts';
import { nodeIdOf, signPayload } from '../lib/signed-report.ts';
import type { SignedEnvelope } from '../lib/signed-report.ts';

const { values: a } = parseBenchArgs('bench/registry-pg.ts', {
  options: { nodes: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' } },
});
const NODES = Number(a.nodes);
const ROUNDS = Number(a.rounds);

const keys = Array.from({ length: NODES }, () => generateKeyPairSync('ed25519'));

/** ROUNDS rounds of one report per node, their nonces numbered from `pass`. */
function reports(pass: number): SignedEnvelope[][] {
  const now = Date.now();
  return Array.from({ length: ROUNDS }, (_, r) => {
    const round = pass * ROUNDS + r;
    return keys.map((k, i) => {
      const pub = k.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
      const payload = { nodeId: nodeIdOf(pub), mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, diskless: false, timestamp: now + round, nonce: `${round.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}` };
      return signPayload(payload, k.privateKey);
    });
  });
}

async function run(name: string, registry: NodeRegistry, rounds: SignedEnvelope[][]): Promise<{ wallUs: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const round of rounds) {
    // One report per node at a time per server, as nodes report on their own clocks; all nodes at once.
    const v = await Promise.all(round.map((r) => registry.accept(r)));
    const bad = v.find((x) => !x.ok);
    if (bad) throw new Error(`${name}: ${JSON.stringify(bad)}`);
  }
  const n = NODES * ROUNDS;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs: ((performance.now() - t0) * 1000) / n, cpuUs: (cpu.user + cpu.system) / n };
}

const dir = mkdtempSync(join(tmpdir(), 'zb-bench-registry-'));
const db = await startPostgres();
try {
  const state = await PgState.open(db.url);
  const file = await Registry.open(dir);
  const pgr = await PgRegistry.open(state);
  // A first pass each warms the JIT; the second pass is measured.
  await run('file', file, reports(0));
  await run('pg', pgr, reports(0));
  const f = await run('file', file, reports(1));
  const p = await run('pg', pgr, reports(1));
  console.log(`${NODES} nodes x ${ROUNDS} rounds, all nodes at once per round`);
  console.log(`file: ${f.wallUs.toFixed(0)} µs/report wall, ${f.cpuUs.toFixed(0)} µs/report CPU (this process)`);
  console.log(`pg:   ${p.wallUs.toFixed(0)} µs/report wall, ${p.cpuUs.toFixed(0)} µs/report CPU (this process)`);
  console.log(`ratio pg/file: wall ${(p.wallUs / f.wallUs).toFixed(2)}x, CPU ${(p.cpuUs / f.cpuUs).toFixed(2)}x`);
  await file.close();
  await pgr.close();
  await state.close();
} finally {
  await db.stop();
  rmSync(dir, { recursive: true, force: true });
}
