// fdatasync of the lease journal on a thread of its own, for the DHCP
// thread. Inline, the DHCP thread waited for every sync: on a disk that takes
// 50 ms to sync, every DISCOVER from every other client waited too. Here the
// DHCP thread writes the group's records (page cache, fast), hands the sync
// over and keeps answering; the ACKs of that group go out when the sync is
// done, and the records that arrive meanwhile form the next group. libuv's
// pool is not used: it is shared with the main thread's file work, and a sync
// queued behind HTTP and TFTP reads was most of the DHCP tail in a storm.
import { fdatasyncSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export interface SyncRequest {
  id: number;
  fd: number;
}

export interface SyncAnswer {
  id: number;
  /** How long the disk took. */
  ms?: number;
  error?: string;
}

const ENTRY = new URL('./journal-sync-worker.ts', import.meta.url);

export class JournalSyncThread {
  private worker: Worker | undefined;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (ms: number) => void; reject: (e: Error) => void }>();

  private constructor(worker: Worker) {
    this.worker = worker;
    worker.on('message', (m: SyncAnswer) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if (m.error === undefined) w?.resolve(m.ms ?? 0);
      else w?.reject(new Error(m.error));
    });
    // A thread that fails takes its pending syncs with it: they are refused (their ACKs are not sent),
    // and from then on the syncs run on the caller's thread, as before there was a sync thread.
    const gone = (why: string) => {
      this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(new Error(`the journal's sync thread ${why}`));
      this.waiting.clear();
    };
    worker.on('error', (e) => gone(`failed: ${e.message}`));
    worker.on('exit', (code) => gone(`exited (${code})`));
    // Idle, it must not keep the process alive; a sync in flight refs it again (sync()).
    worker.unref();
  }

  /** Starts the thread; resolves once it runs. */
  static async start(): Promise<JournalSyncThread> {
    const worker = new Worker(ENTRY);
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    return new JournalSyncThread(worker);
  }

  /** Resolves once `fd`'s written data is on disk, with the ms the disk took. */
  sync(fd: number): Promise<number> {
    const worker = this.worker;
    if (!worker) {
      try {
        return Promise.resolve(syncHere(fd));
      } catch (e) {
        return Promise.reject(e as Error);
      }
    }
    const id = this.next++;
    worker.ref();
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, fd } satisfies SyncRequest);
    });
  }

  /** Ends the thread (after the caller's last sync). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}

/** fdatasync on the calling thread; the ms it took. Throws what fdatasync throws. */
export function syncHere(fd: number): number {
  const started = performance.now();
  fdatasyncSync(fd);
  return performance.now() - started;
}
