// Replay memory with a bounded size. A report is fresh only within the
// window around the server's clock, so a nonce needs remembering only until
// its timestamp leaves the window. When the memory is full the oldest entry
// goes, and its timestamp becomes a floor: reports at or below it are
// refused as too old to check, so eviction never opens a replay hole.

export class NonceMemory {
  private readonly seen = new Map<string, number>();
  private floor = -Infinity;
  readonly capacity: number;

  constructor(capacity = 100_000) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.seen.size;
  }

  /** Timestamps at or below this cannot be checked any more. */
  get oldestCheckable(): number {
    return this.floor;
  }

  /** 'fresh' when this (node, nonce) was not seen and the timestamp is checkable. */
  check(nodeId: string, nonce: string, timestamp: number): 'fresh' | 'replayed' | 'too-old' {
    if (timestamp <= this.floor) return 'too-old';
    return this.seen.has(`${nodeId}/${nonce}`) ? 'replayed' : 'fresh';
  }

  /** Remembers an accepted report; forgets entries older than `expireBefore`, then the oldest beyond capacity. */
  remember(nodeId: string, nonce: string, timestamp: number, expireBefore: number): void {
    // Map order is insertion order, close to timestamp order: stop at the first one still young.
    for (const [key, ts] of this.seen) {
      if (ts >= expireBefore) break;
      this.seen.delete(key);
      this.floor = Math.max(this.floor, ts);
    }
    this.seen.set(`${nodeId}/${nonce}`, timestamp);
    while (this.seen.size > this.capacity) {
      const [key, ts] = this.seen.entries().next().value as [string, number];
      this.seen.delete(key);
      this.floor = Math.max(this.floor, ts);
    }
  }
}
