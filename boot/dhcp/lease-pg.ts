// Full mode's leases in PostgreSQL (config `pg`), so that several servers on
// one segment share one lease state. The table is the truth: one row per
// address that has a holder or had one, one row per client, and both are
// UNIQUE constraints, so two servers can never hand one address to two
// clients nor two addresses to one client. Every decision is one
// transaction: a single statement in the common cases (offering the client's
// own address or a fresh one, binding the address offered), else a few
// statements in an explicit one. An address is taken by INSERT ... ON
// CONFLICT DO NOTHING, and the constraint, not a lock of ours, decides who
// won a race.
//
// A row is: offered (held for offerSeconds), bound (until its lease ends),
// released, or declined (no client; the address is quarantined until
// `expires`). Released rows and rows past `expires` are reclaimable; the
// client's own row stays its address until someone reclaims it, so a client
// that comes back gets its old address, as with the in-memory pool.
//
// The only local state is a set of addresses known to have a row, to pick a
// fresh candidate without a scan; a stale entry costs one skipped or one
// refused INSERT, never a second holder. Both servers see every broadcast
// DISCOVER: the second one's INSERT meets the client's row (the client
// constraint) and offers the same address.
//
// When the database is unreachable no lease is decided: each packet is
// ignored with one reason, one log line marks the outage and one its end,
// and a probe goes through at most once per second until it answers.
import type pg from 'pg';
import { intToIp, ipToInt } from '../../lib/ipv4.ts';
import type { Logger } from '../log.ts';
import type { PgState } from '../state/pg.ts';
import { AddressPlan } from './address-plan.ts';
import type { AddressPlanOptions } from './address-plan.ts';
import { LeaseDbError } from './lease-backend.ts';
import type { LeaseBackend, LeaseListing } from './lease-backend.ts';
import { describeKey, keyOf } from './leases.ts';
import type { ClientRef, Grant, LeaseInfo, LeaseRecord, RequestKind } from './leases.ts';

export const LEASE_TABLE = 'zb_dhcp_lease';
/** The constraint that makes an address one client's; tests drop it to see double allocation happen. */
export const ADDRESS_CONSTRAINT = 'zb_dhcp_lease_address';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${LEASE_TABLE} (
    subnet text NOT NULL,
    ip bigint NOT NULL,
    client text,
    mac text,
    client_id text,
    state text NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'declined')),
    expires bigint NOT NULL,
    hostname text,
    server text NOT NULL,
    CONSTRAINT ${ADDRESS_CONSTRAINT} UNIQUE (subnet, ip),
    CONSTRAINT zb_dhcp_lease_client UNIQUE (subnet, client),
    CHECK ((client IS NULL) = (state = 'declined'))
  )`,
];

/** Decisions waiting for the database at once; past that, packets are dropped rather than queued without bound. */
const MAX_IN_FLIGHT = 256;
/** While the database is away, one decision per this long goes through as a probe. */
const PROBE_MS = 1000;
/** How often the listing and the known-address set are read again from the table. */
const REFRESH_MS = 15_000;
/** Fresh candidates tried in one decision before reclaiming the oldest unused address. */
const FRESH_TRIES = 16;
/** Distinct database error messages logged; past that they are only counted (as ignored packets). */
const MAX_REPORTED = 20;
/** Whole-transaction retries after a deadlock or a constraint race. */
const TX_TRIES = 3;

export interface PgLeasesOptions extends AddressPlanOptions {
  state: PgState;
  leaseSeconds: number;
  offerSeconds?: number;
  declineSeconds?: number;
  /** Names this server in the rows it writes (for people reading the table). */
  server: string;
  log: Logger;
  now?: () => number;
  maxInFlight?: number;
}

interface Row {
  ip: number;
  state: 'offered' | 'bound' | 'released' | 'declined';
  expires: number;
}

interface RawRow {
  ip: string;
  client: string | null;
  mac: string | null;
  client_id: string | null;
  state: Row['state'];
  expires: string;
  hostname: string | null;
}

/** Who takes an address, and on what terms. */
interface Claim {
  key: string;
  client: ClientRef;
  state: 'offered' | 'bound';
  expires: number;
  hostname?: string;
}

/** A connection in a transaction, or the pool for single statements. */
type Queryable = pg.PoolClient | pg.Pool;

function fromRaw(r: { ip: string; state: Row['state']; expires: string }): Row {
  return { ip: Number(r.ip), state: r.state, expires: Number(r.expires) };
}

/** Errors that mean the database is out of reach (network, shutdown, too many connections), not a bad query. */
function unreachable(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^(08|57P|53)/.test(code)) return true;
  // Driver errors without a SQLSTATE: refused or reset sockets, timeouts, "Connection terminated".
  return !(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code));
}

/** SQLSTATEs after which the whole transaction is simply run again. */
function retryable(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === '40P01' || code === '40001' || code === '23505';
}

export class PgLeases implements LeaseBackend, LeaseListing {
  readonly leaseSeconds: number;
  private readonly db: PgState;
  private readonly plan: AddressPlan;
  private readonly subnet: string;
  private readonly server: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly leaseMs: number;
  private readonly offerMs: number;
  private readonly declineMs: number;
  private readonly maxInFlight: number;
  /** Addresses known to have a row; only ever a hint for picking candidates. */
  private taken = new Set<number>();
  private cursor: number;
  private freshExhausted = false;
  private snapshot: LeaseInfo[] = [];
  private inFlight = 0;
  private down = false;
  private probeAt = 0;
  private refresher: NodeJS.Timeout | undefined;
  /** Error messages from the database already logged. */
  private readonly reported = new Set<string>();

  private constructor(opts: PgLeasesOptions) {
    this.db = opts.state;
    this.plan = new AddressPlan(opts);
    this.subnet = this.plan.cidr;
    this.server = opts.server;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.leaseSeconds = opts.leaseSeconds;
    this.leaseMs = opts.leaseSeconds * 1000;
    this.offerMs = (opts.offerSeconds ?? 60) * 1000;
    this.declineMs = (opts.declineSeconds ?? 600) * 1000;
    this.maxInFlight = opts.maxInFlight ?? MAX_IN_FLIGHT;
    // Servers start their search at different places, so they rarely race for one address.
    this.cursor = this.plan.start + Math.floor(Math.random() * this.plan.size);
  }

  /** Creates the table if needed and reads what the table holds for this subnet (restore on start). */
  static async open(opts: PgLeasesOptions): Promise<PgLeases> {
    const leases = new PgLeases(opts);
    await opts.state.ensureSchema('dhcp-leases', SCHEMA);
    await leases.refresh();
    leases.refresher = setInterval(() => {
      leases.refresh().catch(() => undefined);
    }, REFRESH_MS);
    leases.refresher.unref();
    return leases;
  }

  inSubnet(ip: number | string): boolean {
    return this.plan.inSubnet(typeof ip === 'string' ? ipToInt(ip) : ip);
  }

  offer(client: ClientRef, requested?: string): Promise<Grant> {
    // The common cases, a client with a row or a new one taking a fresh address, are single statements; the rest is one transaction.
    if (this.plan.reservedByMac.has(client.mac) || requested !== undefined) return this.run((c) => this.offerTx(c, client, requested));
    return this.run((q) => this.offerFast(q, client), false).then((g) => g ?? this.run((c) => this.offerTx(c, client, requested)));
  }

  knows(client: ClientRef): Promise<boolean> | boolean {
    if (this.plan.reservedByMac.has(client.mac)) return true;
    return this.run(async (c) => (await c.query(`SELECT 1 FROM ${LEASE_TABLE} WHERE subnet = $1 AND client = $2`, [this.subnet, keyOf(client)])).rowCount! > 0, false);
  }

  /**
   * Nothing to do: the offer's row is shared with the server the client
   * chose (both offered the client's one row), so taking it back here could
   * take the address from under that server's ACK. It runs out by itself.
   */
  withdraw(): void {}

  request(client: ClientRef, ip: string, kind: RequestKind, hostname?: string): Promise<Grant> {
    const n = ipToInt(ip);
    const reserved = this.plan.reservedByMac.get(client.mac);
    const slow = () => this.run((c) => this.requestTx(c, client, ip, kind, hostname));
    if ((reserved !== undefined && reserved !== n) || this.plan.forbids(n, client.mac) !== undefined) return slow();
    // The client's own row for this address: one UPDATE binds it, whatever kind of REQUEST it is.
    return this.run((q) => this.bindOwn(q, client, n, hostname), false).then((g) => g ?? slow());
  }

  release(client: ClientRef, ip: string): Promise<LeaseRecord | undefined> {
    return this.run(async (c) => {
      const now = this.now();
      const r = await c.query<{ mac: string; client_id: string | null; hostname: string | null }>(
        `UPDATE ${LEASE_TABLE} SET state = 'released', expires = $4, mac = $5, server = $6 WHERE subnet = $1 AND client = $2 AND ip = $3 AND state = 'bound'
         RETURNING mac, client_id, hostname`,
        [this.subnet, keyOf(client), ipToInt(ip), now, client.mac, this.server],
      );
      const row = r.rows[0];
      if (!row) return undefined;
      const record: LeaseRecord = { mac: row.mac, ip, state: 'released', expires: now };
      if (row.client_id) record.clientId = row.client_id;
      if (row.hostname) record.hostname = row.hostname;
      return record;
    }, false);
  }

  decline(client: ClientRef, ip: string): Promise<LeaseRecord | undefined> {
    return this.run(async (c) => {
      const until = this.now() + this.declineMs;
      const r = await c.query(
        `UPDATE ${LEASE_TABLE} SET client = NULL, mac = NULL, client_id = NULL, hostname = NULL, state = 'declined', expires = $4, server = $5
         WHERE subnet = $1 AND client = $2 AND ip = $3 RETURNING ip`,
        [this.subnet, keyOf(client), ipToInt(ip), until, this.server],
      );
      return r.rowCount ? { declined: ip, until } : undefined;
    }, false);
  }

  /** The table as last read (every REFRESH_MS): for listing only, never for deciding. */
  list(): LeaseInfo[] {
    return [...this.snapshot];
  }

  each(): Iterable<LeaseInfo> {
    return this.snapshot;
  }

  /** Reads the subnet's rows: the listing and the set of addresses with a row. */
  async refresh(): Promise<void> {
    const rows = await this.run(async (c) => (await c.query<RawRow>(`SELECT ip, client, mac, client_id, state, expires, hostname FROM ${LEASE_TABLE} WHERE subnet = $1`, [this.subnet])).rows, false);
    const now = this.now();
    const taken = new Set<number>();
    const list: LeaseInfo[] = [];
    for (const r of rows) {
      const n = Number(r.ip);
      taken.add(n);
      if (r.state === 'declined' || r.mac === null) continue;
      const expires = Number(r.expires);
      const i: LeaseInfo = {
        mac: r.mac, ip: intToIp(n), state: r.state !== 'released' && expires <= now ? (r.state === 'offered' ? 'released' : 'expired') : r.state,
        expires: new Date(expires).toISOString(), reserved: this.plan.reservedByMac.get(r.mac) === n,
      };
      if (r.client_id) i.clientId = r.client_id;
      if (r.hostname) i.hostname = r.hostname;
      // A lapsed offer is no lease: it is listed only while it holds.
      if (!(r.state === 'offered' && expires <= now)) list.push(i);
    }
    this.taken = taken;
    this.snapshot = list;
    this.freshExhausted = false;
  }

  async close(): Promise<void> {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = undefined;
  }

  /**
   * One decision: in a transaction on one connection (`tx`), or statements
   * straight on the pool, each its own transaction. The gate for outages and
   * overload, and retries for races.
   */
  private run<T>(fn: (c: Queryable) => Promise<T>, tx = true): Promise<T> {
    if (this.down) {
      const now = Date.now();
      if (now < this.probeAt) return Promise.reject(new LeaseDbError(`lease database ${this.db.where} unreachable: no new leases until it answers`));
      this.probeAt = now + PROBE_MS;
    }
    if (this.inFlight >= this.maxInFlight) return Promise.reject(new LeaseDbError(`lease database ${this.db.where} busy: ${this.inFlight} decisions waiting`));
    this.inFlight++;
    return this.attempt(fn, tx, 1).then(
      (v) => {
        this.inFlight--;
        if (this.down) {
          this.down = false;
          this.log.warn('dhcp: lease database reachable again; leasing resumes', { database: this.db.where });
        }
        return v;
      },
      (e: unknown) => {
        this.inFlight--;
        if (!unreachable(e)) {
          // The database answered with an error (a table dropped, a permission taken): logged once per message, not per packet.
          const message = (e as Error).message;
          if (!this.reported.has(message) && this.reported.size < MAX_REPORTED) {
            this.reported.add(message);
            this.log.error('dhcp: lease database refused a decision; no lease for those clients', { database: this.db.where, error: message });
          }
          throw new LeaseDbError(`lease database ${this.db.where} refused: ${message}`);
        }
        if (!this.down) {
          this.down = true;
          this.probeAt = Date.now() + PROBE_MS;
          this.log.error('dhcp: lease database unreachable; no new leases until it is back', { database: this.db.where, error: (e as Error).message });
        }
        throw new LeaseDbError(`lease database ${this.db.where} unreachable: ${(e as Error).message}`);
      },
    );
  }

  private async attempt<T>(fn: (c: Queryable) => Promise<T>, tx: boolean, n: number): Promise<T> {
    try {
      return await (tx ? this.db.tx(fn) : fn(this.db.pool));
    } catch (e) {
      if (n < TX_TRIES && retryable(e)) return this.attempt(fn, tx, n + 1);
      throw e;
    }
  }

  /**
   * The client's own row offered again, or else a fresh address in a new row,
   * in one statement (the INSERT runs only when the UPDATE found no row);
   * undefined when the transaction must decide.
   */
  private async offerFast(q: Queryable, client: ClientRef): Promise<Grant | undefined> {
    const key = keyOf(client);
    const now = this.now();
    const expires = now + this.offerMs;
    const fresh = this.nextFresh();
    const r = await q.query<{ ip: string; own: boolean }>({
      name: 'zb-lease-offer',
      text: `WITH held AS (
          UPDATE ${LEASE_TABLE} SET state = CASE WHEN state = 'bound' AND expires > $3 THEN state ELSE 'offered' END,
            expires = CASE WHEN state = 'bound' AND expires > $3 THEN expires ELSE $4 END, server = $5
          WHERE subnet = $1 AND client = $2 RETURNING ip),
        fresh AS (
          INSERT INTO ${LEASE_TABLE} (subnet, ip, client, mac, client_id, state, expires, server)
          SELECT $1, $6, $2, $7, $8, 'offered', $4, $5 WHERE $6::bigint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM held)
          ON CONFLICT DO NOTHING RETURNING ip)
        SELECT ip, true AS own FROM held UNION ALL SELECT ip, false AS own FROM fresh`,
      values: [this.subnet, key, now, expires, this.server, fresh ?? null, client.mac, client.clientId ?? null],
    });
    const row = r.rows[0];
    if (!row) {
      // The fresh address has a row after all (or this client got one meanwhile): the transaction looks closer.
      if (fresh !== undefined) this.taken.add(fresh);
      return undefined;
    }
    const n = Number(row.ip);
    if (!row.own) this.taken.add(n);
    return row.own && this.plan.forbids(n, client.mac) !== undefined ? undefined : { ok: true, ip: intToIp(n), expires };
  }

  /** Binds the client's own row for `n`; undefined when it has none for that address. */
  private async bindOwn(q: Queryable, client: ClientRef, n: number, hostname: string | undefined): Promise<Grant | undefined> {
    const expires = this.now() + this.leaseMs;
    const r = await q.query({
      name: 'zb-lease-bind',
      text: `UPDATE ${LEASE_TABLE} SET state = 'bound', expires = $4, mac = $5, client_id = $6, hostname = $7, server = $8 WHERE subnet = $1 AND client = $2 AND ip = $3 RETURNING ip`,
      values: [this.subnet, keyOf(client), n, expires, client.mac, client.clientId ?? null, hostname ?? null, this.server],
    });
    if (!r.rowCount) return undefined;
    const ip = intToIp(n);
    const record: LeaseRecord = { mac: client.mac, ip, state: 'bound', expires };
    if (client.clientId) record.clientId = client.clientId;
    if (hostname) record.hostname = hostname;
    return { ok: true, ip, expires, record };
  }

  private async own(c: Queryable, key: string): Promise<Row | undefined> {
    const r = await c.query<{ ip: string; state: Row['state']; expires: string }>(
      `SELECT ip, state, expires FROM ${LEASE_TABLE} WHERE subnet = $1 AND client = $2 FOR UPDATE`,
      [this.subnet, key],
    );
    return r.rows[0] && fromRaw(r.rows[0]);
  }

  private async offerTx(c: Queryable, client: ClientRef, requested: string | undefined): Promise<Grant> {
    const key = keyOf(client);
    const now = this.now();
    let own = await this.own(c, key);
    const claim: Claim = { key, client, state: 'offered', expires: now + this.offerMs };
    const reserved = this.plan.reservedByMac.get(client.mac);
    if (own && own.ip !== reserved && (reserved !== undefined || this.plan.forbids(own.ip, client.mac) !== undefined)) {
      // A reservation elsewhere, or an address the configuration no longer allows: the old row goes.
      if (reserved === undefined || (await this.claimable(c, reserved, key, now))) {
        await c.query(`DELETE FROM ${LEASE_TABLE} WHERE subnet = $1 AND client = $2`, [this.subnet, key]);
        this.taken.delete(own.ip);
        own = undefined;
      }
    }
    if (own) return this.hold(c, key, own, now);
    if (reserved !== undefined && (await this.claim(c, reserved, claim, now))) return { ok: true, ip: intToIp(reserved), expires: claim.expires };
    const asked = requested === undefined ? undefined : ipToInt(requested);
    if (asked !== undefined && this.plan.dynamic(asked) && (await this.claim(c, asked, claim, now))) return { ok: true, ip: requested!, expires: claim.expires };
    for (let i = 0; i < FRESH_TRIES; i++) {
      const n = this.nextFresh();
      if (n === undefined) break;
      if (await this.insert(c, n, claim)) return { ok: true, ip: intToIp(n), expires: claim.expires };
      // Another server's offer for this same client got there first: offer what it offered.
      const theirs = await this.own(c, key);
      if (theirs) return this.hold(c, key, theirs, now);
      this.taken.add(n);
    }
    const old = await this.reclaimOldest(c, claim, now);
    if (old !== undefined) return { ok: true, ip: intToIp(old), expires: claim.expires };
    return { ok: false, reason: this.plan.exhausted() };
  }

  /** Offers the client its own row's address: a live lease stays bound, anything else becomes a fresh offer. */
  private async hold(c: Queryable, key: string, own: Row, now: number): Promise<Grant> {
    const expires = now + this.offerMs;
    if (!(own.state === 'bound' && own.expires > now)) {
      await c.query(`UPDATE ${LEASE_TABLE} SET state = 'offered', expires = $3, server = $4 WHERE subnet = $1 AND client = $2`, [this.subnet, key, expires, this.server]);
    }
    return { ok: true, ip: intToIp(own.ip), expires };
  }

  private async requestTx(c: Queryable, client: ClientRef, ip: string, kind: RequestKind, hostname: string | undefined): Promise<Grant> {
    const key = keyOf(client);
    const now = this.now();
    const n = ipToInt(ip);
    const own = await this.own(c, key);
    if (kind === 'selecting') {
      if (own?.ip !== n) return { ok: false, reason: `${ip} was not offered to this client` };
    } else {
      const reserved = this.plan.reservedByMac.get(client.mac);
      if (reserved !== undefined && reserved !== n) return { ok: false, reason: `this client's reserved address is ${intToIp(reserved)}` };
      // RFC 2131 4.3.2: a client whose notion of its address is wrong gets a NAK.
      if (own && own.ip !== n && own.state === 'bound' && own.expires > now) return { ok: false, reason: `this client's lease is for ${intToIp(own.ip)}` };
    }
    const fixed = this.plan.forbids(n, client.mac);
    if (fixed !== undefined) return { ok: false, reason: `${ip} ${fixed}` };
    const expires = now + this.leaseMs;
    const record: LeaseRecord = { mac: client.mac, ip, state: 'bound', expires };
    if (client.clientId) record.clientId = client.clientId;
    if (hostname) record.hostname = hostname;
    if (own?.ip === n) {
      await c.query(
        `UPDATE ${LEASE_TABLE} SET state = 'bound', expires = $3, mac = $4, client_id = $5, hostname = $6, server = $7 WHERE subnet = $1 AND client = $2`,
        [this.subnet, key, expires, client.mac, client.clientId ?? null, hostname ?? null, this.server],
      );
      return { ok: true, ip, expires, record };
    }
    if (own) {
      await c.query(`DELETE FROM ${LEASE_TABLE} WHERE subnet = $1 AND client = $2`, [this.subnet, key]);
      this.taken.delete(own.ip);
    }
    if (await this.claim(c, n, { key, client, state: 'bound', expires, hostname }, now)) return { ok: true, ip, expires, record };
    const holder = await c.query<{ client: string | null }>(`SELECT client FROM ${LEASE_TABLE} WHERE subnet = $1 AND ip = $2`, [this.subnet, n]);
    const by = holder.rows[0]?.client;
    return { ok: false, reason: by ? `${ip} is leased to ${describeKey(by)}` : `${ip} was declined (in use on the network)` };
  }

  /** Whether `n` is free for `key` now: no row, the key's own, or a lapsed one. */
  private async claimable(c: Queryable, n: number, key: string, now: number): Promise<boolean> {
    const r = await c.query<{ client: string | null; state: Row['state']; expires: string }>(`SELECT client, state, expires FROM ${LEASE_TABLE} WHERE subnet = $1 AND ip = $2`, [this.subnet, n]);
    const row = r.rows[0];
    return !row || row.client === key || row.state === 'released' || Number(row.expires) <= now;
  }

  /** Takes address `n`: a new row, or a lapsed row taken over. False when someone holds it. */
  private async claim(c: Queryable, n: number, w: Claim, now: number): Promise<boolean> {
    if (await this.insert(c, n, w)) return true;
    const r = await c.query(
      `UPDATE ${LEASE_TABLE} SET client = $3, mac = $4, client_id = $5, state = $6, expires = $7, hostname = $8, server = $9
       WHERE subnet = $1 AND ip = $2 AND (state = 'released' OR expires <= $10) RETURNING ip`,
      [this.subnet, n, w.key, w.client.mac, w.client.clientId ?? null, w.state, w.expires, w.hostname ?? null, this.server, now],
    );
    this.taken.add(n);
    return r.rowCount! > 0;
  }

  /** A new row for `n`; false when the address (or this client) already has one. The UNIQUE constraints are the arbiter. */
  private async insert(c: Queryable, n: number, w: Claim): Promise<boolean> {
    const r = await c.query({
      name: 'zb-lease-insert',
      text: `INSERT INTO ${LEASE_TABLE} (subnet, ip, client, mac, client_id, state, expires, hostname, server)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING ip`,
      values: [this.subnet, n, w.key, w.client.mac, w.client.clientId ?? null, w.state, w.expires, w.hostname ?? null, this.server],
    });
    if (r.rowCount! > 0) this.taken.add(n);
    return r.rowCount! > 0;
  }

  /** The address whose holder let go longest ago, taken over; rows other servers are deciding on are skipped. */
  private async reclaimOldest(c: Queryable, w: Claim, now: number): Promise<number | undefined> {
    const forbidden = [...this.plan.excluded, ...this.plan.reservedByIp.keys()];
    const r = await c.query<{ ip: string }>(
      `UPDATE ${LEASE_TABLE} SET client = $2, mac = $3, client_id = $4, state = $5, expires = $6, hostname = NULL, server = $7
       WHERE subnet = $1 AND ip = (
         SELECT ip FROM ${LEASE_TABLE} WHERE subnet = $1 AND ip BETWEEN $9 AND $10 AND NOT (ip = ANY($11::bigint[]))
           AND (state = 'released' OR expires <= $8) ORDER BY expires LIMIT 1 FOR UPDATE SKIP LOCKED)
       AND (state = 'released' OR expires <= $8) RETURNING ip`,
      [this.subnet, w.key, w.client.mac, w.client.clientId ?? null, w.state, w.expires, this.server, now, this.plan.start, this.plan.end, forbidden],
    );
    return r.rows[0] ? Number(r.rows[0].ip) : undefined;
  }

  /** The next address with no row as far as this server knows (the INSERT has the last word). */
  private nextFresh(): number | undefined {
    if (this.freshExhausted) return undefined;
    const { start, end } = this.plan;
    for (let i = 0; i < this.plan.size; i++) {
      const n = this.cursor;
      this.cursor = n >= end ? start : n + 1;
      if (!this.taken.has(n) && this.plan.dynamic(n)) return n;
    }
    this.freshExhausted = true;
    return undefined;
  }
}
