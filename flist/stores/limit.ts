// How many chunk transfers are in flight at once: rfs runs 20; fewer
// starve a high-latency store, many more only queue in its server.
export const DEFAULT_TRANSFERS = 20;

/** A counting semaphore: run() waits for a slot, runs, frees the slot. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`a semaphore needs at least one slot, got ${slots}`);
    this.free = slots;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // the slot passes straight to the next waiter, so none can jump the queue
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * Maps items through fn with at most `limit` calls in flight; resolves with
 * the results in input order, rejects with the first failure (the calls
 * already started run to their end, no new ones start).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
