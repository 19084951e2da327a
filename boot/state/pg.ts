// Shared state in PostgreSQL, when the configuration names a `pg` URL: one
// connection pool per server, transactions that roll back on a throw, and
// schemas created once however many servers start at the same moment. The
// parts that keep state there (registry, leases) bring their own tables and
// queries; this module only owns the connection and the schema bookkeeping.
// Uniqueness across servers is the database's job (constraints), not ours.
import pg from 'pg';
import { parsePgUrl, redactPgUrl } from './pg-url.ts';
import { PgListener, type ListenHandlers } from './pg-listen.ts';

/** Connections per server: a registry and a lease backend share them; PostgreSQL's default allows 100 in all. */
export const DEFAULT_POOL_MAX = 10;
/** How long a connection attempt may take before the server says the database is unreachable. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** One key for every zeroboot schema change: they are rare and short, so they simply queue. */
const SCHEMA_LOCK = '8820196474330722164';

export class PgStateError extends Error {
  override name = 'PgStateError';
}

export interface PgStateOptions {
  /** Most connections this server opens (default DEFAULT_POOL_MAX). */
  max?: number;
}

/** The message of a driver error with the password (if it ever appears) taken out. */
function cleanMessage(e: unknown, password: string | undefined): string {
  const m = e instanceof Error ? e.message || (e as NodeJS.ErrnoException).code || e.name : String(e);
  return password ? m.split(password).join('***') : m;
}

export class PgState {
  readonly pool: pg.Pool;
  /** host:port/database, for messages (no user, no password). */
  readonly where: string;
  private readonly url: string;
  private readonly password: string | undefined;
  private readonly listeners = new Set<PgListener>();

  private constructor(pool: pg.Pool, url: string, where: string, password: string | undefined) {
    this.pool = pool;
    this.url = url;
    this.where = where;
    this.password = password;
  }

  /** Opens a pool and proves it with one query; PgStateError (without the password) when the database cannot be used. */
  static async open(url: string, opts: PgStateOptions = {}): Promise<PgState> {
    const target = parsePgUrl(url);
    const where = `${target.host}:${target.port}/${target.database}`;
    const password = new URL(url).password ? decodeURIComponent(new URL(url).password) : undefined;
    const pool = new pg.Pool({ connectionString: url, max: opts.max ?? DEFAULT_POOL_MAX, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'zeroboot' });
    // An idle connection the server drops (restart, failover) must not end the process; the next query reconnects.
    pool.on('error', () => undefined);
    const state = new PgState(pool, url, where, password);
    try {
      await pool.query('SELECT 1');
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw new PgStateError(`cannot reach PostgreSQL at ${target.host}:${target.port} (database ${target.database}${target.user ? `, user ${target.user}` : ''}): ${cleanMessage(e, password)}; check that it runs and that the \`pg\` URL is right (${redactPgUrl(url)})`);
    }
    return state;
  }

  /** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws (the error goes on). */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw new PgStateError(`cannot reach PostgreSQL at ${this.where}: ${cleanMessage(e, this.password)}`);
    }
    let broken: Error | undefined;
    // A checked-out connection that drops emits 'error' on itself (the pool listens only while it is idle): without a listener that ends the process.
    const dropped = (e: Error) => (broken = e);
    client.on('error', dropped);
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch((r: Error) => (broken = r));
      throw e;
    } finally {
      client.off('error', dropped);
      // A connection whose rollback failed, or that dropped, is in an unknown state: destroyed rather than reused.
      client.release(broken);
    }
  }

  /**
   * Applies `statements` as schema `name`, once per distinct list: servers
   * starting together queue on one advisory lock, and the list's text is
   * recorded, so the same list is not run again. A changed list is run
   * again whole, so write statements that may run twice (IF NOT EXISTS).
   */
  async ensureSchema(name: string, statements: string[]): Promise<void> {
    const text = statements.join(';\n');
    await this.tx(async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`);
      await c.query('CREATE TABLE IF NOT EXISTS zeroboot_schema (name text PRIMARY KEY, statements text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      const had = await c.query<{ statements: string }>('SELECT statements FROM zeroboot_schema WHERE name = $1', [name]);
      if (had.rows[0]?.statements === text) return;
      for (const s of statements) await c.query(s);
      await c.query('INSERT INTO zeroboot_schema (name, statements) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET statements = EXCLUDED.statements, applied_at = now()', [name, text]);
    });
  }

  /** LISTENs on `channel` over a connection of its own until close (pg-listen.ts); the first resync has run when it resolves. */
  async listen(channel: string, on: ListenHandlers): Promise<void> {
    const l = new PgListener(this.url, channel, on);
    try {
      await l.start();
    } catch (e) {
      throw new PgStateError(`cannot LISTEN on PostgreSQL at ${this.where}: ${cleanMessage(e, this.password)}`);
    }
    this.listeners.add(l);
  }

  async close(): Promise<void> {
    for (const l of this.listeners) await l.close();
    this.listeners.clear();
    await this.pool.end();
  }
}
