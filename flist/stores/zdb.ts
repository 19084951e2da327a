// zdb:// — chunks in a 0-db namespace (ours or the reference), keyed by the
// raw id: GET/EXISTS/SET through the RESP client library, one pipelined
// connection opened on first use with SELECT namespace [password], and
// opened again after it failed.
import { RespClient, RespServerError, type RespReply } from '../../zdb/resp/client.ts';
import { chunkHex } from './chunk-id.ts';
import { StoreAuthError, StoreError } from './errors.ts';
import type { ChunkStore } from './types.ts';
import type { ZdbStoreUrl } from './url.ts';

export interface ZdbStoreOptions {
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

export class ZdbStore implements ChunkStore {
  readonly url: string;
  private readonly desc: ZdbStoreUrl;
  private readonly opts: ZdbStoreOptions;
  private connecting: Promise<RespClient> | undefined;

  constructor(desc: ZdbStoreUrl, opts: ZdbStoreOptions = {}) {
    this.url = desc.url;
    this.desc = desc;
    this.opts = opts;
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    const r = await this.command(['GET', id], 'reading', hex);
    if (r.type === 'bulk') return r.value ?? undefined;
    throw this.unexpected(r, 'GET', hex);
  }

  async has(id: Buffer): Promise<boolean> {
    const hex = chunkHex(id);
    const r = await this.command(['EXISTS', id], 'looking for', hex);
    if (r.type === 'integer') return r.value === 1n;
    throw this.unexpected(r, 'EXISTS', hex);
  }

  async put(id: Buffer, data: Buffer): Promise<void> {
    const hex = chunkHex(id);
    const r = await this.command(['SET', id, data], 'writing', hex);
    // a bulk: the key; nil: the same value was already there
    if (r.type !== 'bulk') throw this.unexpected(r, 'SET', hex);
  }

  /** Durability is the server's: 0-db syncs on its own when run with --sync; RESP has no command to ask for it. */
  async sync(): Promise<void> {}

  async close(): Promise<void> {
    const c = this.connecting;
    this.connecting = undefined;
    if (c) await c.then((client) => client.close(), () => {});
  }

  private async command(args: (string | Buffer)[], doing: string, hex: string): Promise<RespReply> {
    const client = await this.client();
    try {
      return await client.command(args);
    } catch (e) {
      throw new StoreError(this.url, `${doing} chunk ${hex} failed: ${(e as Error).message}`);
    }
  }

  private unexpected(r: RespReply, command: string, hex: string): StoreError {
    const what = r.type === 'error' ? `the server answered: ${r.text}` : `unexpected ${r.type} reply`;
    return new StoreError(this.url, `${command} of chunk ${hex}: ${what}`);
  }

  private client(): Promise<RespClient> {
    const current = this.connecting;
    if (current) {
      return current.then((c) => {
        if (c.open) return c;
        if (this.connecting === current) this.connecting = undefined;
        return this.client();
      });
    }
    const next = this.connect();
    this.connecting = next;
    // a failed connect is not cached: the next operation tries again
    next.catch(() => {
      if (this.connecting === next) this.connecting = undefined;
    });
    return next;
  }

  private async connect(): Promise<RespClient> {
    let client: RespClient;
    try {
      client = await RespClient.connect(this.desc.target, this.opts);
    } catch (e) {
      throw new StoreError(this.url, (e as Error).message);
    }
    const { namespace, password } = this.desc;
    if (namespace === undefined && password === undefined) return client;
    const ns = namespace ?? 'default';
    try {
      await client.select(ns, password);
    } catch (e) {
      client.close();
      throw this.selectFailure(ns, e);
    }
    return client;
  }

  private selectFailure(ns: string, e: unknown): StoreError {
    if (!(e instanceof RespServerError)) return new StoreError(this.url, `SELECT ${ns} failed: ${(e as Error).message}`);
    if (/denied/i.test(e.reply)) return new StoreAuthError(this.url, `namespace "${ns}" refused the password (${e.reply})`);
    if (/protected/i.test(e.reply)) return new StoreAuthError(this.url, `namespace "${ns}" needs a password: zdb://[user]:PASSWORD@host/${ns} (${e.reply})`);
    if (/not found/i.test(e.reply)) return new StoreError(this.url, `namespace "${ns}" does not exist (${e.reply})`);
    return new StoreError(this.url, `SELECT ${ns} refused: ${e.reply}`);
  }
}
