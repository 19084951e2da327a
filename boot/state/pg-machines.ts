// Machine summaries shared between servers when the configuration names
// `pg`: per MAC, the stage its last boot reached (the last event's kind),
// when, why (a refusal's reason) and which server saw it. A server writes a
// row only when a machine's stage or reason changes, not per packet, in one
// batched upsert at most every FLUSH_MS, and tells the others by NOTIFY
// (the MACs as payload); each keeps the other servers' rows in memory for
// its machine list (/api/machines and the dashboard, via MachineIndex).
// Bounded on every side: a hostile network can claim any number of MACs,
// so the rows pending, published, held from peers and kept in the table
// are each capped at MAX_MACHINES, the oldest going first.
import type { BootEvent, BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';
import type { PgState } from './pg.ts';
import { LogThrottle } from '../../lib/log-throttle.ts';
import { KeyBatch } from './key-batch.ts';

export const MACHINES_CHANNEL = 'zeroboot_machines';
/** As many as the timeline keeps by default, with room for several servers' own. */
export const MAX_MACHINES = 50_000;
const FLUSH_MS = 250;
/** Rows not seen for this long are deleted (checked at most every PRUNE_EVERY_MS). */
const KEEP_MS = 7 * 86_400_000;
const PRUNE_EVERY_MS = 60_000;
/** A NOTIFY payload holds at most 8000 bytes: MACs are sent in lists below that. */
const NOTIFY_BYTES = 7000;

export const MACHINES_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS zeroboot_machines (
    mac text PRIMARY KEY,
    stage text NOT NULL,
    last_seen timestamptz NOT NULL,
    reason text,
    server text NOT NULL)`,
  'CREATE INDEX IF NOT EXISTS zeroboot_machines_last_seen ON zeroboot_machines (last_seen)',
];

/** What another server saw of a machine. */
export interface PeerMachine {
  mac: string;
  /** The kind of its last event there (dhcp.ack, http.kernel, ...). */
  stage: string;
  /** ISO time of that event. */
  lastSeen: string;
  reason?: string;
  /** The server that saw it (its node-facing HTTP base). */
  server: string;
}

interface Row {
  mac: string;
  stage: string;
  last_seen: Date;
  reason: string | null;
  server: string;
}

/** Sets `key` as the newest entry, dropping the oldest beyond `cap`. */
function setCapped<V>(m: Map<string, V>, key: string, value: V, cap: number): void {
  m.delete(key);
  m.set(key, value);
  if (m.size > cap) m.delete(m.keys().next().value as string);
}

export interface PgMachinesOptions {
  timeline: BootTimeline;
  /** This server's name in the rows (its node-facing HTTP base); rows under it are its own, not a peer's. */
  server: string;
  log?: Logger;
  max?: number;
}

export class PgMachines {
  private readonly state: PgState;
  private readonly server: string;
  private readonly log: Logger | undefined;
  private readonly max: number;
  /** The stage and reason last written per MAC: an event that changes neither writes nothing. */
  private readonly published = new Map<string, string>();
  private readonly pending = new Map<string, BootEvent>();
  private readonly peers = new Map<string, PeerMachine>();
  private readonly listeners = new Set<(mac: string) => void>();
  private readonly failures = new LogThrottle(60_000);
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private prunedAt = 0;
  private stop: () => void = () => undefined;
  private readonly changed: KeyBatch;

  private constructor(state: PgState, opts: PgMachinesOptions) {
    this.state = state;
    this.server = opts.server;
    this.log = opts.log;
    this.max = opts.max ?? MAX_MACHINES;
    this.changed = new KeyBatch((macs) => this.refresh(macs), (e) => this.log?.warn('could not read machine summaries from PostgreSQL', { error: e.message }), this.max);
  }

  static async open(state: PgState, opts: PgMachinesOptions): Promise<PgMachines> {
    const m = new PgMachines(state, opts);
    await state.ensureSchema('machines', MACHINES_SCHEMA);
    await state.listen(MACHINES_CHANNEL, {
      message: (payload) => m.changed.add(payload.split(',')),
      resync: () => m.reload(),
    });
    m.stop = opts.timeline.subscribe((e) => m.observe(e));
    return m;
  }

  get(mac: string): PeerMachine | undefined {
    return this.peers.get(mac);
  }

  macs(): Iterable<string> {
    return this.peers.keys();
  }

  /** Told the MAC of each peer row that changed; returns the unsubscribe. */
  subscribe(listener: (mac: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private observe(e: BootEvent): void {
    const key = `${e.kind}\n${e.reason ?? ''}`;
    if (this.published.get(e.mac) === key) return;
    setCapped(this.published, e.mac, key, this.max);
    setCapped(this.pending, e.mac, e, this.max);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      // One write at a time, in order.
      this.flushing = this.flushing.then(() => this.flush());
    }, FLUSH_MS);
  }

  private async flush(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending.clear();
    if (batch.length === 0) return;
    try {
      await this.state.tx(async (c) => {
        await c.query(
          `INSERT INTO zeroboot_machines (mac, stage, last_seen, reason, server)
             SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
           ON CONFLICT (mac) DO UPDATE SET stage = EXCLUDED.stage, last_seen = EXCLUDED.last_seen, reason = EXCLUDED.reason, server = EXCLUDED.server
             WHERE zeroboot_machines.last_seen <= EXCLUDED.last_seen`,
          [batch.map((e) => e.mac), batch.map((e) => e.kind), batch.map((e) => e.time), batch.map((e) => e.reason ?? null), batch.map(() => this.server)],
        );
        for (const list of chunks(batch.map((e) => e.mac))) await c.query('SELECT pg_notify($1, $2)', [MACHINES_CHANNEL, list]);
        if (Date.now() - this.prunedAt > PRUNE_EVERY_MS) {
          this.prunedAt = Date.now();
          await c.query('DELETE FROM zeroboot_machines WHERE last_seen < $1', [new Date(Date.now() - KEEP_MS)]);
          await c.query('DELETE FROM zeroboot_machines WHERE mac IN (SELECT mac FROM zeroboot_machines ORDER BY last_seen DESC OFFSET $1)', [this.max]);
        }
      });
    } catch (e) {
      // Written again at the machine's next change; the local timeline has it meanwhile.
      for (const ev of batch) this.published.delete(ev.mac);
      const n = this.failures.note();
      if (n !== undefined) this.log?.warn('could not write machine summaries to PostgreSQL', { error: (e as Error).message, failedSinceLastLine: n });
    }
  }

  private async refresh(macs: string[]): Promise<void> {
    const rows = (await this.state.pool.query<Row>('SELECT mac, stage, last_seen, reason, server FROM zeroboot_machines WHERE mac = ANY($1)', [macs])).rows;
    for (const r of rows) this.take(r);
  }

  private async reload(): Promise<void> {
    const rows = (await this.state.pool.query<Row>('SELECT mac, stage, last_seen, reason, server FROM zeroboot_machines ORDER BY last_seen LIMIT $1', [this.max])).rows;
    for (const r of rows) this.take(r);
  }

  private take(r: Row): void {
    if (r.server === this.server) {
      // Our own row (or ours again): the timeline has it.
      if (this.peers.delete(r.mac)) for (const l of this.listeners) l(r.mac);
      return;
    }
    setCapped(this.peers, r.mac, { mac: r.mac, stage: r.stage, lastSeen: r.last_seen.toISOString(), ...(r.reason ? { reason: r.reason } : {}), server: r.server }, this.max);
    for (const l of this.listeners) l(r.mac);
  }

  /** Writes what is pending and stops following the timeline. */
  async close(): Promise<void> {
    this.stop();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flushing = this.flushing.then(() => this.flush());
    }
    await this.flushing;
    await this.changed.settled();
  }
}

/** Comma-joined lists of MACs, each under NOTIFY_BYTES. */
function chunks(macs: string[]): string[] {
  const out: string[] = [];
  let cur = '';
  for (const m of macs) {
    if (cur && cur.length + m.length + 1 > NOTIFY_BYTES) {
      out.push(cur);
      cur = '';
    }
    cur = cur ? `${cur},${m}` : m;
  }
  if (cur) out.push(cur);
  return out;
}
