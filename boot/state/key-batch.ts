// Keys named by notifications, read back in batches: while one read runs,
// new keys gather, and the next read takes them all (one query, not one per
// notification). Bounded: keys beyond `cap` waiting are dropped; that row
// is read again at its next change or at the next resync.
export class KeyBatch {
  private readonly keys = new Set<string>();
  private readonly read: (keys: string[]) => Promise<void>;
  private readonly failed: (e: Error) => void;
  private readonly cap: number;
  private running: Promise<void> | undefined;

  constructor(read: (keys: string[]) => Promise<void>, failed: (e: Error) => void, cap: number) {
    this.read = read;
    this.failed = failed;
    this.cap = cap;
  }

  add(keys: Iterable<string>): void {
    for (const k of keys) if (this.keys.size < this.cap) this.keys.add(k);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves when no read is running. */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    while (this.keys.size > 0) {
      const batch = [...this.keys];
      this.keys.clear();
      try {
        await this.read(batch);
      } catch (e) {
        this.failed(e as Error);
      }
    }
  }
}
