// Group commit for --sync, and the --synctime timer.
// `sync()` resolves once every write made before the call is on disk. Calls
// made while an fsync batch is in flight share the next batch, so a server
// that awaits sync() for each pipelined write still pays one fdatasync per
// file per batch, not per write. fdatasync runs in libuv's thread pool.
import fs from 'node:fs';
import type { FileSet } from './file-set.ts';

export class SyncScheduler {
  private sources: () => FileSet[];
  private inflight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private synctimeMs: number;

  constructor(sources: () => FileSet[], synctimeSeconds?: number) {
    this.sources = sources;
    this.synctimeMs = synctimeSeconds && synctimeSeconds > 0 ? synctimeSeconds * 1000 : 0;
  }

  /** Called after every write: arms the --synctime timer. */
  written(): void {
    if (this.synctimeMs === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sync().catch(() => {});
    }, this.synctimeMs);
    this.timer.unref();
  }

  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.inflight) {
      this.inflight = this.runBatch();
      return this.inflight;
    }
    this.queued = this.inflight.then(
      () => this.startQueued(),
      () => this.startQueued(),
    );
    return this.queued;
  }

  private startQueued(): Promise<void> {
    this.queued = undefined;
    this.inflight = this.runBatch();
    return this.inflight;
  }

  private async runBatch(): Promise<void> {
    try {
      const fds = this.sources().flatMap((s) => s.takeDirty());
      await Promise.all(fds.map((fd) => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())))));
    } finally {
      this.inflight = undefined;
    }
  }

  /** Waits for any batch in flight (before closing files). */
  async drain(): Promise<void> {
    while (this.inflight || this.queued) await (this.queued ?? this.inflight);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
