// A string-keyed map that knows which entry was used least recently, in O(1)
// per use and per eviction. A plain Map kept in recency order (delete and
// set on every use) leaves a deleted slot per use at the front of V8's
// table, and finding the oldest entry then walks those slots: at 10,000
// machines under a flood of new MACs that walk was most of the timeline's
// time. Here the Map only looks entries up; a doubly linked list holds the
// recency order.

interface Slot<V> {
  key: string;
  value: V;
  older: Slot<V> | undefined;
  newer: Slot<V> | undefined;
}

export class RecencyMap<V> {
  private readonly slots = new Map<string, Slot<V>>();
  private oldestSlot: Slot<V> | undefined;
  private newestSlot: Slot<V> | undefined;

  get size(): number {
    return this.slots.size;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** The value, without counting this as a use. */
  peek(key: string): V | undefined {
    return this.slots.get(key)?.value;
  }

  /** The value, which becomes the most recently used. */
  use(key: string): V | undefined {
    const s = this.slots.get(key);
    if (!s) return undefined;
    this.toNewest(s);
    return s.value;
  }

  /** Sets `key` to `value` as the most recently used entry. */
  set(key: string, value: V): void {
    const s = this.slots.get(key);
    if (s) {
      s.value = value;
      this.toNewest(s);
      return;
    }
    const slot: Slot<V> = { key, value, older: this.newestSlot, newer: undefined };
    if (this.newestSlot) this.newestSlot.newer = slot;
    else this.oldestSlot = slot;
    this.newestSlot = slot;
    this.slots.set(key, slot);
  }

  delete(key: string): boolean {
    const s = this.slots.get(key);
    if (!s) return false;
    this.unlink(s);
    this.slots.delete(key);
    return true;
  }

  /** The least recently used entry's value. */
  oldest(): V | undefined {
    return this.oldestSlot?.value;
  }

  /**
   * Every entry, in the order keys were first added. Safe while entries are
   * used, added or deleted between steps (a caller may yield in between):
   * deleted ones are skipped, added ones come at the end.
   */
  *entries(): Generator<[string, V]> {
    for (const [key, s] of this.slots) yield [key, s.value];
  }

  private toNewest(s: Slot<V>): void {
    if (s === this.newestSlot) return;
    this.unlink(s);
    s.older = this.newestSlot;
    s.newer = undefined;
    this.newestSlot!.newer = s;
    this.newestSlot = s;
  }

  private unlink(s: Slot<V>): void {
    if (s.older) s.older.newer = s.newer;
    else this.oldestSlot = s.newer;
    if (s.newer) s.newer.older = s.older;
    else this.newestSlot = s.older;
  }
}
