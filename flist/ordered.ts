// Bounded concurrency helpers for the tree commands: results kept in input
// order with at most `limit` started ahead, and a queue of background tasks
// that makes its producer wait while `limit` are running.

/** Runs fn over items with at most `limit` started ahead of the consumer; yields in input order. */
export async function* orderedWindow<T, R>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const window: Promise<R>[] = [];
  try {
    for (const item of items) {
      const p = fn(item);
      // rethrown in order by the yield below; this only keeps it from counting as unhandled
      p.catch(() => undefined);
      window.push(p);
      if (window.length >= limit) yield await window.shift()!;
    }
    while (window.length > 0) yield await window.shift()!;
  } finally {
    await Promise.allSettled(window);
  }
}

/** Background tasks, at most `limit` at once; add() waits for a free slot, drain() for all, rethrowing the first failure. */
export class TaskQueue {
  readonly #limit: number;
  readonly #running = new Set<Promise<void>>();
  #failure: Error | undefined;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async add(task: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.#limit) await Promise.race(this.#running);
    if (this.#failure) throw this.#failure;
    const p: Promise<void> = task().then(
      () => {
        this.#running.delete(p);
      },
      (e: unknown) => {
        this.#running.delete(p);
        this.#failure ??= e as Error;
      },
    );
    this.#running.add(p);
  }

  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    if (this.#failure) throw this.#failure;
  }
}
