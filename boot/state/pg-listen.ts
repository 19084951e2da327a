// LISTEN on one channel over a connection of its own, for as long as the
// server runs: PostgreSQL tells every server of a change another one made
// (NOTIFY, delivered at commit), so each keeps its view in memory current.
// A lost connection is retried with backoff; after each (re)connection the
// caller resyncs, since notifications sent while away are lost.
import pg from 'pg';

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface ListenHandlers {
  /** A notification's payload. */
  message(payload: string): void;
  /** Called after each LISTEN took effect (the first included): re-read what may have been missed. */
  resync(): Promise<void>;
  /** The connection was lost; it is being retried. */
  lost?(why: string): void;
}

export class PgListener {
  private readonly url: string;
  private readonly channel: string;
  private readonly on: ListenHandlers;
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs = RETRY_FIRST_MS;
  private timer: NodeJS.Timeout | undefined;

  constructor(url: string, channel: string, on: ListenHandlers) {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`a channel name is lower-case letters, digits and _, got ${channel}`);
    this.url = url;
    this.channel = channel;
    this.on = on;
  }

  /** The first connection, LISTEN and resync; throws when they fail (the caller's start fails with it). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000, application_name: 'zeroboot-listen' });
    c.on('notification', (n) => {
      if (n.channel === this.channel && n.payload !== undefined) this.on.message(n.payload);
    });
    const lost = (why: string) => {
      if (this.client !== c || this.closed) return;
      this.client = undefined;
      c.end().catch(() => undefined);
      this.on.lost?.(why);
      this.retry();
    };
    c.on('error', (e) => lost(e.message));
    c.on('end', () => lost('connection closed'));
    try {
      await c.connect();
      this.client = c;
      await c.query(`LISTEN ${this.channel}`);
      await this.on.resync();
      this.retryMs = RETRY_FIRST_MS;
    } catch (e) {
      if (this.client === c) this.client = undefined;
      await c.end().catch(() => undefined);
      throw e;
    }
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect().catch((e: Error) => {
        this.on.lost?.(e.message);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        this.retry();
      });
    }, this.retryMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
