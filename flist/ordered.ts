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

/**
 * Background tasks, at most `limit` at once; add() waits for a free slot,
 * drain() for all, rethrowing the first failure. A finished task wakes one
 * waiting add(): racing all running tasks at every add() cost a reaction
 * per running task each time (64 x 6000 for a tree of 6000 files).
 */
export class TaskQueue {
  readonly #limit: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #idle: (() => void)[] = [];
  #failure: Error | undefined;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async add(task: () => Promise<void>): Promise<void> {
    while (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (this.#failure) throw this.#failure;
    let p: Promise<void>;
    try {
      p = task();
    } catch (e) {
      this.#failure ??= e as Error;
      throw e;
    }
    this.#running++;
    p.then(
      () => this.#done(),
      (e: unknown) => {
        this.#failure ??= e as Error;
        this.#done();
      },
    );
  }

  #done(): void {
    this.#running--;
    this.#waiting.shift()?.();
    if (this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async drain(): Promise<void> {
    while (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    if (this.#failure) throw this.#failure;
  }
}
