// Media built per request (UKI, ISO, USB image with a farm id inside), kept
// on disk for the next node of the same farm. The node network is hostile:
// anyone there can ask for 4 billion farm ids, so every resource is bounded.
// - Bytes: the files kept stay under maxBytes, least recently used dropped
//   first (a file being handed to a request is kept until it is open; an
//   open file stays readable after it is dropped, as Linux keeps its inode).
// - Single flight: requests for the same key share one build.
// - Builds: at most maxBuilds run at once, at most maxQueued wait; beyond
//   that the request is refused at once (MediaBusyError, a 503), rather than
//   queueing work without end.
// - Time: a build still running after buildTimeoutMs is aborted (its signal
//   fires: the builder kills its tools' process group), its waiters get
//   MediaTimeoutError (a 503) and its slot is freed at once, whether or not
//   the builder ever returns: a hung xorriso cannot hold the slot.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileEntry } from '../store.ts';
import type { StoreEntry } from '../store.ts';
import { RecencyMap } from '../recency-map.ts';

export interface MediaCacheOptions {
  /** Folder the cache makes its own folder in (removed at close). */
  parent: string;
  /** The parent is this server's alone (its state directory): cache folders a run left behind (a crash) are removed at open. */
  sweep?: boolean;
  maxBytes: number;
  maxBuilds: number;
  maxQueued: number;
  buildTimeoutMs: number;
}

/** The limits' defaults; maxPerAddress is the grammar's (bootstrap-routes.ts), kept here so the configuration reads them all from one place. */
export const DEFAULT_MEDIA_LIMITS = { maxBytes: 1 << 30, maxBuilds: 1, maxQueued: 8, buildTimeoutMs: 120_000, maxPerAddress: 2 };

const OWN_PREFIX = 'zeroboot-media-';

/** Too many builds running and waiting: the request should be retried later. */
export class MediaBusyError extends Error {}

/** A build ran past its time and was aborted: the request may be retried later. */
export class MediaTimeoutError extends Error {}

/** Writes the medium to `outPath`; `work` is a folder of its own for inputs, removed afterwards. Stops (killing what it started) when `signal` aborts. */
export type MediaBuild = (outPath: string, work: string, signal: AbortSignal) => Promise<void>;

interface Flight {
  /** Requests waiting for this build. */
  waiters: number;
  done: Promise<Kept>;
}

interface Kept {
  id: string;
  /** <id>.<build number>: a new build of a dropped id never shares a name with the file being removed. */
  file: string;
  bytes: number;
  /** Requests between "kept" and "file open": not dropped meanwhile. */
  pins: number;
}

export class MediaCache {
  readonly dir: string;
  private readonly opts: MediaCacheOptions;
  private readonly kept = new RecencyMap<Kept>();
  private readonly building = new Map<string, Flight>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private keptBytes = 0;
  private seq = 0;

  private constructor(dir: string, opts: MediaCacheOptions) {
    this.dir = dir;
    this.opts = opts;
  }

  static async open(opts: MediaCacheOptions): Promise<MediaCache> {
    await mkdir(opts.parent, { recursive: true });
    if (opts.sweep) {
      for (const name of await readdir(opts.parent)) if (name.startsWith(OWN_PREFIX)) await rm(path.join(opts.parent, name), { recursive: true, force: true });
    }
    return new MediaCache(await mkdtemp(path.join(opts.parent, OWN_PREFIX)), opts);
  }

  /** The medium for `key`, built by `build` unless kept or being built; an entry (named <hash><ext>) the caller closes. */
  async get(key: string, build: MediaBuild, ext = ''): Promise<StoreEntry> {
    const id = createHash('sha256').update(key).digest('hex');
    let kept = this.kept.use(id);
    if (kept) {
      kept.pins++;
    } else {
      let flight = this.building.get(id);
      if (!flight) {
        if (this.running >= this.opts.maxBuilds && this.waiting.length >= this.opts.maxQueued) {
          throw new MediaBusyError(`${this.running} media builds running and ${this.waiting.length} waiting`);
        }
        const counter = { waiters: 0 };
        const started: Flight = Object.assign(counter, { done: this.build(id, build, counter) });
        this.building.set(id, started);
        const forget = () => this.building.delete(id);
        started.done.then(forget, forget);
        flight = started;
      }
      // Counted before the wait: the build pins the file once per waiter, so no trim drops it before each opens it.
      flight.waiters++;
      kept = await flight.done;
    }
    try {
      return await openEntry(kept.file, id + ext);
    } finally {
      kept.pins--;
      this.trim();
    }
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async build(id: string, build: MediaBuild, flight: { waiters: number }): Promise<Kept> {
    await this.slot();
    const n = this.seq++;
    const work = path.join(this.dir, `work-${n}`);
    const out = path.join(this.dir, `out-${n}`);
    const abort = new AbortController();
    const run = (async () => {
      await mkdir(work);
      await build(out, work, abort.signal);
      if (abort.signal.aborted) throw abort.signal.reason;
      const file = path.join(this.dir, `${id}.${n}`);
      await rename(out, file);
      // Stopped while it was being renamed: the waiters have had their answer, the file is nobody's.
      if (abort.signal.aborted) {
        await rm(file, { force: true });
        throw abort.signal.reason;
      }
      return file;
    })();
    const cleanup = async () => {
      await rm(work, { recursive: true, force: true });
      await rm(out, { force: true });
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new MediaTimeoutError(`the build ran longer than ${this.opts.buildTimeoutMs} ms and was stopped`);
        abort.abort(e);
        reject(e);
      }, this.opts.buildTimeoutMs);
    });
    try {
      const file = await Promise.race([run, timedOut]);
      const kept: Kept = { id, file, bytes: (await stat(file)).size, pins: flight.waiters };
      this.kept.set(id, kept);
      this.keptBytes += kept.bytes;
      return kept;
    } finally {
      clearTimeout(timer);
      this.running--;
      this.waiting.shift()?.();
      // An aborted builder's folders are removed once it has returned, however late: until then it may still write them.
      if (abort.signal.aborted) void run.then(cleanup, cleanup);
      else await cleanup();
    }
  }

  /** Waits for a build slot (the caller has checked the queue bound). */
  private slot(): Promise<void> {
    if (this.running < this.opts.maxBuilds) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.running++;
        resolve();
      }),
    );
  }

  /** Drops the least recently used files until the kept bytes fit; a pinned one stays (as just used) and goes on a later call. */
  private trim(): void {
    const pinned: Kept[] = [];
    while (this.keptBytes > this.opts.maxBytes) {
      const oldest = this.kept.oldest();
      if (!oldest) break;
      this.kept.delete(oldest.id);
      this.keptBytes -= oldest.bytes;
      if (oldest.pins > 0) pinned.push(oldest);
      else void rm(oldest.file, { force: true });
    }
    for (const kept of pinned) {
      this.kept.set(kept.id, kept);
      this.keptBytes += kept.bytes;
    }
  }
}

/** A file opened now (so dropping it from the cache cannot pull it away), read through its descriptor. */
async function openEntry(file: string, name: string): Promise<StoreEntry> {
  const fh = await open(file, 'r');
  const st = await fh.stat();
  return fileEntry(name, st, `"${name.slice(0, 32)}-${st.size.toString(16)}"`, async () => fh, () => fh.close());
}
