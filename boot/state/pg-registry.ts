// The node registry in PostgreSQL, for several servers sharing one state
// (the configuration's `pg`). The database decides who a MAC belongs to:
// zeroboot_node_macs has the MAC as its primary key, so when two servers
// bind one MAC to two keys at the same moment, one insert waits for the
// other's commit and then fails, and that report is refused (after one
// retry that sees the winner). Trust on first use is the same as in files
// (verify.ts), checked again inside the transaction against the database,
// not the memory. Nonces of accepted reports are kept there too, so a
// report replayed to another server is refused. Each server keeps a view in
// memory for the synchronous reads (API, metrics, DHCP) and hears of the
// others' changes by LISTEN/NOTIFY, re-reading only the nodes named.
// Diskless nodes are kept too (unlike the file): bounded by their MACs, as
// a new key for a MAC replaces the old node, and another server must see them.
import type pg from 'pg';
import type { PgState } from './pg.ts';
import type { Logger } from '../log.ts';
import { KeyBatch } from './key-batch.ts';
import { RegistryReads, type NodeRecord, type NodeRegistry, type RegistryOptions } from '../registry/node-registry.ts';
import { macBound, verifyReport, type Verdict } from '../registry/verify.ts';

export const REGISTRY_CHANNEL = 'zeroboot_nodes';

export const REGISTRY_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS zeroboot_nodes (
    node_id text PRIMARY KEY,
    public_key text NOT NULL,
    diskless boolean NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    reports integer NOT NULL,
    last_report json NOT NULL)`,
  // The MAC is the key: one node per MAC across every server.
  `CREATE TABLE IF NOT EXISTS zeroboot_node_macs (
    mac text PRIMARY KEY,
    node_id text NOT NULL REFERENCES zeroboot_nodes ON DELETE CASCADE,
    bound_at bigint NOT NULL)`,
  'CREATE INDEX IF NOT EXISTS zeroboot_node_macs_node ON zeroboot_node_macs (node_id)',
  `CREATE TABLE IF NOT EXISTS zeroboot_report_nonces (
    node_id text NOT NULL,
    nonce text NOT NULL,
    ts bigint NOT NULL,
    PRIMARY KEY (node_id, nonce))`,
];

/** Nonces older than twice the window are deleted at most this often (a report that old is refused as stale anyway). */
const NONCE_PRUNE_MS = 60_000;
const UNIQUE_VIOLATION = '23505';

const SELECT_NODES = `SELECT n.node_id, n.public_key, n.diskless, n.first_seen::float8 AS first_seen, n.last_seen::float8 AS last_seen, n.reports, n.last_report,
    coalesce(array_agg(m.mac ORDER BY m.bound_at, m.mac) FILTER (WHERE m.mac IS NOT NULL), '{}') AS macs
  FROM zeroboot_nodes n LEFT JOIN zeroboot_node_macs m USING (node_id)`;

interface NodeRow {
  node_id: string;
  public_key: string;
  diskless: boolean;
  first_seen: number;
  last_seen: number;
  reports: number;
  last_report: Record<string, unknown>;
  macs: string[];
}

const recordOf = (r: NodeRow): NodeRecord => ({
  nodeId: r.node_id,
  publicKey: r.public_key,
  macs: r.macs,
  diskless: r.diskless,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  reports: r.reports,
  lastReport: r.last_report,
});

export interface PgRegistryOptions extends RegistryOptions {
  log?: Logger;
}

type Recorded = { ok: true; record: NodeRecord; firstContact: boolean; replaces?: string } | Extract<Verdict, { ok: false }>;

export class PgRegistry extends RegistryReads implements NodeRegistry {
  private readonly state: PgState;
  private readonly log: Logger | undefined;
  /** Nodes another server changed, re-read in batches; the listener's reconnection resyncs everything when a read fails. */
  private readonly changed = new KeyBatch(
    (ids) => this.refresh(ids),
    (e) => this.log?.warn('could not re-read nodes changed by another server', { error: e.message }),
    100_000,
  );
  private prunedAt = 0;

  private constructor(state: PgState, opts: PgRegistryOptions) {
    super(opts);
    this.state = state;
    this.log = opts.log;
  }

  /** Creates the tables if needed, loads every node and listens for the other servers' changes. */
  static async open(state: PgState, opts: PgRegistryOptions = {}): Promise<PgRegistry> {
    const r = new PgRegistry(state, opts);
    await state.ensureSchema('registry', REGISTRY_SCHEMA);
    await state.listen(REGISTRY_CHANNEL, {
      message: (nodeId) => r.changed.add([nodeId]),
      resync: () => r.reload(),
      lost: (why) => r.log?.warn('lost the PostgreSQL notifications of the registry; retrying', { why }),
    });
    return r;
  }

  async accept(body: unknown, now = Date.now()): Promise<Verdict> {
    const v = verifyReport(body, this.view, this.nonces, now, this.windowMs);
    if (!v.ok) return v;
    let out: Recorded;
    try {
      out = await this.state.tx((c) => this.record(c, v, now));
    } catch (e) {
      // Another server bound the MAC between our read and our insert: the second try sees its binding.
      if ((e as { code?: string }).code !== UNIQUE_VIOLATION) throw e;
      out = await this.state.tx((c) => this.record(c, v, now));
    }
    if (!out.ok) return out;
    this.nonces.remember(v.nodeId, v.nonce, v.timestamp, now - this.windowMs);
    if (out.replaces) this.view.drop(out.replaces);
    this.view.put(out.record);
    const { replaces: _cached, ...rest } = v;
    return { ...rest, firstContact: out.firstContact, ...(out.replaces ? { replaces: out.replaces } : {}) };
  }

  /** The report's effect, decided again against the database inside the transaction. */
  private async record(c: pg.PoolClient, v: Extract<Verdict, { ok: true }>, now: number): Promise<Recorded> {
    const fresh = await c.query('INSERT INTO zeroboot_report_nonces (node_id, nonce, ts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [v.nodeId, v.nonce, v.timestamp]);
    if (fresh.rowCount === 0) return { ok: false, code: 'replayed', reason: 'this nonce was already used by this node (on this or another server)' };
    if (now - this.prunedAt > NONCE_PRUNE_MS) {
      this.prunedAt = now;
      await c.query('DELETE FROM zeroboot_report_nonces WHERE ts < $1', [now - 2 * this.windowMs]);
    }
    const bound = (await c.query<{ node_id: string; diskless: boolean }>(
      'SELECT m.node_id, n.diskless FROM zeroboot_node_macs m JOIN zeroboot_nodes n USING (node_id) WHERE m.mac = $1 FOR UPDATE OF m', [v.mac])).rows[0];
    let replaces: string | undefined;
    if (bound && bound.node_id !== v.nodeId) {
      if (!bound.diskless) return macBound(v.mac, bound.node_id);
      replaces = bound.node_id;
      await c.query('DELETE FROM zeroboot_nodes WHERE node_id = $1', [replaces]);
      await c.query('SELECT pg_notify($1, $2)', [REGISTRY_CHANNEL, replaces]);
    }
    await c.query(
      `INSERT INTO zeroboot_nodes (node_id, public_key, diskless, first_seen, last_seen, reports, last_report) VALUES ($1, $2, $3, $4, $4, 1, $5)
       ON CONFLICT (node_id) DO UPDATE SET public_key = EXCLUDED.public_key, diskless = EXCLUDED.diskless,
         last_seen = greatest(zeroboot_nodes.last_seen, EXCLUDED.last_seen), reports = zeroboot_nodes.reports + 1,
         last_report = CASE WHEN EXCLUDED.last_seen >= zeroboot_nodes.last_seen THEN EXCLUDED.last_report ELSE zeroboot_nodes.last_report END`,
      [v.nodeId, v.publicKey, v.diskless, now, JSON.stringify(v.payload)],
    );
    if (bound?.node_id !== v.nodeId) await c.query('INSERT INTO zeroboot_node_macs (mac, node_id, bound_at) VALUES ($1, $2, $3)', [v.mac, v.nodeId, now]);
    await c.query('SELECT pg_notify($1, $2)', [REGISTRY_CHANNEL, v.nodeId]);
    const row = (await c.query<NodeRow>(`${SELECT_NODES} WHERE n.node_id = $1 GROUP BY n.node_id`, [v.nodeId])).rows[0];
    return { ok: true, record: recordOf(row), firstContact: !bound || replaces !== undefined, ...(replaces ? { replaces } : {}) };
  }

  async forget(nodeId: string): Promise<boolean> {
    const gone = await this.state.tx(async (c) => {
      const r = await c.query('DELETE FROM zeroboot_nodes WHERE node_id = $1', [nodeId]);
      if (r.rowCount) await c.query('SELECT pg_notify($1, $2)', [REGISTRY_CHANNEL, nodeId]);
      return (r.rowCount ?? 0) > 0;
    });
    this.view.drop(nodeId);
    return gone;
  }

  /** Re-reads the nodes another server changed (or forgot). */
  private async refresh(ids: string[]): Promise<void> {
    const rows = (await this.state.pool.query<NodeRow>(`${SELECT_NODES} WHERE n.node_id = ANY($1) GROUP BY n.node_id`, [ids])).rows;
    const found = new Set(rows.map((r) => r.node_id));
    for (const id of ids) if (!found.has(id)) this.view.drop(id);
    for (const r of rows) this.view.put(recordOf(r));
  }

  /** Replaces the view with the database's (at start and after a lost notification connection). */
  private async reload(): Promise<void> {
    const rows = (await this.state.pool.query<NodeRow>(`${SELECT_NODES} GROUP BY n.node_id`)).rows;
    this.view.clear();
    for (const r of rows) this.view.put(recordOf(r));
  }

  async close(): Promise<void> {
    await this.changed.settled();
  }
}
