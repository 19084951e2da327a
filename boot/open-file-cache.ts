// Open store files kept for a moment and shared by the downloads that ask
// for them meanwhile, like nginx's open_file_cache. Opening a store file is
// five calls on libuv's thread pool (two realpaths, stat, open, close); in a
// boot storm every machine asks for the same few files, and those calls,
// queued on the pool's four threads, were a large part of the server's time
// and delayed the DHCP ACKs that wait on the same pool for their lease's
// fdatasync. A file is opened once per VALID_MS at most; a file replaced
// on disk is seen within that time (an entry is never refreshed in place).
// Entries with no file behind them (made in memory per request, such as
// GRUB's per-machine configuration) pass through, never kept.
import { cleanPath } from './store.ts';
import type { ImageStore, StoreEntry } from './store.ts';

/** How long an opened file answers for its path. */
export const VALID_MS = 1000;
/** Files held open at most (each holds a descriptor). */
export const MAX_OPEN = 256;

interface Shared {
  entry: StoreEntry;
  /** The cache's own reference while listed, plus one per download. */
  refs: number;
  openedAt: number;
}

export class OpenFileCache implements ImageStore {
  private readonly inner: ImageStore;
  private readonly validMs: number;
  private readonly maxOpen: number;
  /** In order of opening: the oldest first, so expiry and eviction look at the front. */
  private readonly files = new Map<string, Shared>();
  private readonly opening = new Map<string, Promise<Shared | StoreEntry>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(inner: ImageStore, opts: { validMs?: number; maxOpen?: number } = {}) {
    this.inner = inner;
    this.validMs = opts.validMs ?? VALID_MS;
    this.maxOpen = opts.maxOpen ?? MAX_OPEN;
  }

  async open(virtualPath: string): Promise<StoreEntry> {
    const key = cleanPath(virtualPath);
    this.expire(Date.now());
    let shared: Shared | StoreEntry | undefined = this.files.get(key);
    if (!shared) {
      // One open per path however many ask at once; a failure (not found) is not kept.
      let pending = this.opening.get(key);
      const mine = !pending;
      if (!pending) {
        pending = this.fill(key).finally(() => this.opening.delete(key));
        this.opening.set(key, pending);
      }
      shared = await pending;
      // Not a file: the entry is the opener's alone; the others open their own.
      if (!('refs' in shared)) return mine ? shared : this.inner.open(key);
    }
    const s = shared;
    s.refs++;
    return view(s, () => this.release(s));
  }

  /** Lets every listed file go (each closes once its last download ends). */
  close(): void {
    for (const key of [...this.files.keys()]) this.drop(key);
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** The shared file, or an entry with no file behind it (for the one caller that opened it; the others open their own). */
  private async fill(key: string): Promise<Shared | StoreEntry> {
    const entry = await this.inner.open(key);
    if (!entry.fd) return entry;
    // Opened now, before it is shared: the file entry opens lazily, and two first readers would open it twice.
    try {
      await entry.fd?.();
    } catch (e) {
      await entry.close().catch(() => undefined);
      throw e;
    }
    const shared: Shared = { entry, refs: 1, openedAt: Date.now() };
    this.files.set(key, shared);
    while (this.files.size > this.maxOpen) this.drop(this.files.keys().next().value!);
    this.sweeper ??= setInterval(() => this.expire(Date.now()), this.validMs).unref();
    return shared;
  }

  private expire(now: number): void {
    for (const [key, s] of this.files) {
      if (now - s.openedAt < this.validMs) break;
      this.drop(key);
    }
    if (this.files.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private drop(key: string): void {
    const s = this.files.get(key);
    if (!s) return;
    this.files.delete(key);
    this.release(s);
  }

  private release(s: Shared): void {
    if (--s.refs === 0) void s.entry.close().catch(() => undefined);
  }
}

/** One download's handle on a shared file: everything but close, which gives its reference back once. */
function view(s: Shared, release: () => void): StoreEntry {
  let closed = false;
  const e = s.entry;
  return {
    path: e.path,
    size: e.size,
    mtime: e.mtime,
    etag: e.etag,
    read: (offset, length) => e.read(offset, length),
    readInto: (buf, position) => e.readInto(buf, position),
    ...(e.fd ? { fd: e.fd } : {}),
    close: async () => {
      if (closed) return;
      closed = true;
      release();
    },
  };
}
