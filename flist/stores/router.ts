// Routing by the first byte of the chunk id, as rfs does: each route covers
// an inclusive start..end byte range. Writes go to every matching store
// (replication); reads try the matching stores in random order (spreading
// the load) and fall back to the next on a missing chunk or a failure.
import { chunkHex } from './chunk-id.ts';
import { RouteError, RouteRangeError } from './errors.ts';
import { openStore, type StoreOptions } from './open.ts';
import type { ChunkDir, ChunkStore } from './types.ts';

export interface Route {
  start: number;
  end: number;
  store: ChunkStore;
}

export interface RouteSpec {
  start: number;
  end: number;
  url: string;
}

/** Whether data is the chunk `id` names (the pipeline's hash check); a chunk failing it is read from the next store. */
export type ChunkCheck = (id: Buffer, data: Buffer) => boolean | Promise<boolean>;

export interface RouterOptions {
  /** in [0, 1), for the read order (default Math.random) */
  random?: () => number;
  check?: ChunkCheck;
}

function checkRange(start: number, end: number, what: string): void {
  const byte = (n: number) => Number.isInteger(n) && n >= 0 && n <= 255;
  if (!byte(start) || !byte(end) || start > end) throw new RouteRangeError(`${what}: the range ${start}-${end} must be bytes 0-255 with start <= end`);
}

/** A --store argument: `[xx-xx=]url` with hex bytes (rfs's syntax); without a range the store takes every id. */
export function parseStoreArg(arg: string): RouteSpec {
  const m = /^([0-9a-fA-F]{2})-([0-9a-fA-F]{2})=(.*)$/.exec(arg);
  if (!m) {
    if (/^[0-9a-fA-F]*-[0-9a-fA-F]*=/.test(arg)) throw new RouteRangeError(`--store ${JSON.stringify(arg.slice(0, 20))}: a range is two hex bytes, as 00-7f=URL`);
    return { start: 0, end: 255, url: arg };
  }
  const spec = { start: parseInt(m[1], 16), end: parseInt(m[2], 16), url: m[3] };
  checkRange(spec.start, spec.end, `--store ${m[1]}-${m[2]}`);
  return spec;
}

export class ChunkRouter implements ChunkStore {
  readonly url: string;
  private readonly routes: Route[];
  private readonly random: () => number;
  private readonly check: ChunkCheck | undefined;

  constructor(routes: Route[], opts: RouterOptions = {}) {
    if (routes.length === 0) throw new RouteRangeError('no chunk store given');
    for (const r of routes) checkRange(r.start, r.end, `route ${r.store.url}`);
    this.routes = routes;
    this.random = opts.random ?? Math.random;
    this.check = opts.check;
    this.url = routes.map((r) => `${r.start}-${r.end}=${r.store.url}`).join(' ');
  }

  async get(id: Buffer): Promise<Buffer | undefined> {
    const hex = chunkHex(id);
    const reasons: string[] = [];
    let failed = false;
    for (const store of this.shuffled(this.matching(id, hex))) {
      try {
        const data = await store.get(id);
        if (!data) {
          reasons.push(`store ${store.url}: missing`);
          continue;
        }
        if (!this.check || (await this.check(id, data))) return data;
        failed = true;
        reasons.push(`store ${store.url}: the data does not hash to the id`);
      } catch (e) {
        failed = true;
        reasons.push((e as Error).message);
      }
    }
    // missing everywhere is a missing chunk; a failure somewhere may hide it
    if (!failed) return undefined;
    throw new RouteError(hex, `no store could give it: ${reasons.join('; ')}`);
  }

  /** A local file of one matching store (picked as get() picks), when that store keeps files; a missing file falls back to get(). Not with a check. */
  localPath(id: Buffer): string | undefined {
    if (this.check) return undefined;
    const stores = this.routes.filter((r) => id[0] >= r.start && id[0] <= r.end).map((r) => r.store);
    if (stores.length === 0) return undefined;
    return this.shuffled([...new Set(stores)])[0].localPath?.(id);
  }

  /** Every route's folders, cut to its range; undefined when a route's store does not keep plain chunk files. */
  chunkDirs(): ChunkDir[] | undefined {
    const out: ChunkDir[] = [];
    for (const r of this.routes) {
      const dirs = r.store.chunkDirs?.();
      if (dirs === undefined) return undefined;
      for (const d of dirs) {
        const start = Math.max(d.start, r.start);
        const end = Math.min(d.end, r.end);
        if (start <= end) out.push({ ...d, start, end });
      }
    }
    return out;
  }

  async has(id: Buffer): Promise<boolean> {
    const hex = chunkHex(id);
    const reasons: string[] = [];
    for (const store of this.shuffled(this.matching(id, hex))) {
      try {
        if (await store.has(id)) return true;
      } catch (e) {
        reasons.push((e as Error).message);
      }
    }
    if (reasons.length === 0) return false;
    throw new RouteError(hex, `not found, and some stores could not be asked: ${reasons.join('; ')}`);
  }

  async put(id: Buffer, data: Buffer): Promise<void> {
    const hex = chunkHex(id);
    const stores = this.matching(id, hex);
    const results = await Promise.allSettled(stores.map((s) => s.put(id, data)));
    const reasons = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (reasons.length > 0) throw new RouteError(hex, `not written to ${reasons.length} of ${stores.length} stores: ${reasons.join('; ')}`);
  }

  async sync(): Promise<void> {
    await Promise.all([...new Set(this.routes.map((r) => r.store))].map((s) => s.sync()));
  }

  async close(): Promise<void> {
    await Promise.all([...new Set(this.routes.map((r) => r.store))].map((s) => s.close()));
  }

  private matching(id: Buffer, hex: string): ChunkStore[] {
    const stores = [...new Set(this.routes.filter((r) => id[0] >= r.start && id[0] <= r.end).map((r) => r.store))];
    if (stores.length === 0) throw new RouteError(hex, `no store route covers ids starting with ${hex.slice(0, 2)}`);
    return stores;
  }

  private shuffled(stores: ChunkStore[]): ChunkStore[] {
    const out = stores.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** A router over URLs, each distinct URL opened once (one connection per zdb, whatever the number of its ranges). */
export function openRouter(specs: RouteSpec[], opts: StoreOptions & RouterOptions = {}): ChunkRouter {
  const byUrl = new Map<string, ChunkStore>();
  const routes = specs.map((s) => {
    let store = byUrl.get(s.url);
    if (!store) {
      store = openStore(s.url, opts);
      byUrl.set(s.url, store);
    }
    return { start: s.start, end: s.end, store };
  });
  return new ChunkRouter(routes, opts);
}
