// A byte budget that callers wait for in arrival order, with a deadline:
// the memory the server may hold for answers it must buffer whole, so a
// crowd of requests queues instead of growing the heap without bound.

export class WaitBudget {
  private left: number;
  private readonly queue: { bytes: number; grant(): void }[] = [];

  constructor(bytes: number) {
    this.left = bytes;
  }

  /** True once `bytes` are taken; false if `waitMs` passed or `signal` aborted first (nothing taken). */
  take(bytes: number, waitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.queue.length === 0 && bytes <= this.left) {
      this.left -= bytes;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        bytes,
        grant: () => {
          done();
          resolve(true);
        },
      };
      const giveUp = () => {
        done();
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        // A smaller request behind this one may fit now.
        this.grantWaiting();
        resolve(false);
      };
      const timer = setTimeout(giveUp, waitMs);
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', giveUp);
      };
      signal?.addEventListener('abort', giveUp, { once: true });
      this.queue.push(waiter);
    });
  }

  give(bytes: number): void {
    this.left += bytes;
    this.grantWaiting();
  }

  private grantWaiting(): void {
    while (this.queue.length > 0 && this.queue[0].bytes <= this.left) {
      const w = this.queue.shift()!;
      this.left -= w.bytes;
      w.grant();
    }
  }
}
