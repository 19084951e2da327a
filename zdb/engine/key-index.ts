// The in-memory key index of a namespace, without one JS object per key:
// records are columns of typed arrays, key bytes live in one arena buffer,
// and an open-addressing table (linear probing, seeded hash of the key
// bytes) maps a key to its record. A Map of records cost a lookup through
// V8's ordered hash table and a heap object per key (the largest user-space
// item of a SET's profile, and GC work that grows with the key count).
// Iteration keeps insertion order, as a Map does (FLUSH writes its
// tombstones in that order): records are chained in a doubly linked list.
import { randomInt } from 'node:crypto';
import type { KeyRecord } from './records.ts';

const INITIAL_RECORDS = 1024;
/** per record: dataId, offset, length, crc, idxId, idxOffset, idxPrevious, parentId, parentOffset */
const U32_FIELDS = 9;
/** arena bytes freed by deletes that trigger a compaction, once they are also half of it */
const COMPACT_MIN_HOLES = 1024 * 1024;

export class KeyIndex {
  /** slot -> record id + 1 (0: empty); size a power of two, at most half full */
  private table = new Int32Array(INITIAL_RECORDS * 2);
  private mask = INITIAL_RECORDS * 2 - 1;
  private readonly seed = randomInt(0, 0x7fffffff);
  private count = 0;
  private keyBytes = 0;

  // record columns, by record id
  private capacity = INITIAL_RECORDS;
  private hash = new Uint32Array(INITIAL_RECORDS);
  private keyOffset = new Uint32Array(INITIAL_RECORDS);
  private keyLength = new Uint8Array(INITIAL_RECORDS);
  private u32 = new Uint32Array(INITIAL_RECORDS * U32_FIELDS);
  /** timestamps as given (an admin SET may pass any integer; the files keep its low 32 bits) */
  private timestamp = new Float64Array(INITIAL_RECORDS);
  private next = new Int32Array(INITIAL_RECORDS);
  private prev = new Int32Array(INITIAL_RECORDS);
  private head = -1;
  private tail = -1;
  /** ids never used yet start at `used`; freed ids are reused first */
  private used = 0;
  private free: number[] = [];

  private arena = Buffer.allocUnsafe(64 * 1024);
  private arenaUsed = 0;
  private arenaHoles = 0;

  get size(): number {
    return this.count;
  }

  /** Sum of the live keys' lengths. */
  get totalKeyLength(): number {
    return this.keyBytes;
  }

  get(key: Buffer): KeyRecord | undefined {
    const id = this.find(key, this.hashOf(key));
    return id < 0 ? undefined : this.record(id);
  }

  has(key: Buffer): boolean {
    return this.find(key, this.hashOf(key)) >= 0;
  }

  /** Inserts or replaces `key`'s record; a replaced key keeps its place in the order. */
  set(key: Buffer, rec: KeyRecord): void {
    const h = this.hashOf(key);
    let id = this.find(key, h);
    if (id < 0) id = this.insert(key, h);
    this.store(id, rec);
  }

  delete(key: Buffer): boolean {
    const h = this.hashOf(key);
    let slot = h & this.mask;
    for (;;) {
      const r = this.table[slot];
      if (r === 0) return false;
      if (this.matches(r - 1, key, h)) break;
      slot = (slot + 1) & this.mask;
    }
    const id = this.table[slot] - 1;
    this.unslot(slot);
    this.unlink(id);
    this.count--;
    this.keyBytes -= this.keyLength[id];
    this.arenaHoles += this.keyLength[id];
    this.free.push(id);
    if (this.arenaHoles >= COMPACT_MIN_HOLES && this.arenaHoles * 2 > this.arenaUsed) this.compact();
    return true;
  }

  /** Every live key (a copy) with its record, in insertion order: a snapshot, safe to change the index while walking it. */
  entries(): [Buffer, KeyRecord][] {
    const out: [Buffer, KeyRecord][] = [];
    for (let id = this.head; id >= 0; id = this.next[id]) out.push([this.keyOf(id), this.record(id)]);
    return out;
  }

  private hashOf(key: Buffer): number {
    // FNV-1a from a per-index seed, then murmur3's finalizer so that linear probing sees mixed low bits
    let h = this.seed ^ 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i], 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  private find(key: Buffer, h: number): number {
    let slot = h & this.mask;
    for (;;) {
      const r = this.table[slot];
      if (r === 0) return -1;
      if (this.matches(r - 1, key, h)) return r - 1;
      slot = (slot + 1) & this.mask;
    }
  }

  private matches(id: number, key: Buffer, h: number): boolean {
    if (this.hash[id] !== h || this.keyLength[id] !== key.length) return false;
    const arena = this.arena;
    const at = this.keyOffset[id];
    for (let i = 0; i < key.length; i++) if (arena[at + i] !== key[i]) return false;
    return true;
  }

  private insert(key: Buffer, h: number): number {
    if ((this.count + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    let id = this.free.pop();
    if (id === undefined) {
      if (this.used === this.capacity) this.grow();
      id = this.used++;
    }
    if (this.arenaUsed + key.length > this.arena.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + key.length));
      this.arena.copy(grown, 0, 0, this.arenaUsed);
      this.arena = grown;
    }
    key.copy(this.arena, this.arenaUsed);
    this.keyOffset[id] = this.arenaUsed;
    this.arenaUsed += key.length;
    this.keyLength[id] = key.length;
    this.hash[id] = h;
    // linked at the tail: insertion order
    this.prev[id] = this.tail;
    this.next[id] = -1;
    if (this.tail >= 0) this.next[this.tail] = id;
    else this.head = id;
    this.tail = id;
    let slot = h & this.mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & this.mask;
    this.table[slot] = id + 1;
    this.count++;
    this.keyBytes += key.length;
    return id;
  }

  /** Empties `slot`, moving later entries of its probe run back so every lookup still finds them (no tombstones). */
  private unslot(slot: number): void {
    const table = this.table;
    const mask = this.mask;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      const r = table[j];
      if (r === 0) break;
      const home = this.hash[r - 1] & mask;
      // the entry at j may fill the hole unless its home lies cyclically in (hole, j]
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (!stays) {
        table[hole] = r;
        hole = j;
      }
    }
    table[hole] = 0;
  }

  private unlink(id: number): void {
    const p = this.prev[id];
    const n = this.next[id];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let id = this.head; id >= 0; id = this.next[id]) {
      let slot = this.hash[id] & this.mask;
      while (this.table[slot] !== 0) slot = (slot + 1) & this.mask;
      this.table[slot] = id + 1;
    }
  }

  private grow(): void {
    const n = this.capacity * 2;
    const widen = <T extends Uint32Array | Uint8Array | Int32Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(n * per);
      b.set(a);
      return b;
    };
    this.hash = widen(this.hash, (k) => new Uint32Array(k));
    this.keyOffset = widen(this.keyOffset, (k) => new Uint32Array(k));
    this.keyLength = widen(this.keyLength, (k) => new Uint8Array(k));
    this.u32 = widen(this.u32, (k) => new Uint32Array(k), U32_FIELDS);
    this.timestamp = widen(this.timestamp, (k) => new Float64Array(k));
    this.next = widen(this.next, (k) => new Int32Array(k));
    this.prev = widen(this.prev, (k) => new Int32Array(k));
    this.capacity = n;
  }

  /** Copies the live keys into a fresh arena, dropping the bytes of deleted ones. */
  private compact(): void {
    const arena = Buffer.allocUnsafe(Math.max(64 * 1024, this.keyBytes * 2));
    let at = 0;
    for (let id = this.head; id >= 0; id = this.next[id]) {
      const from = this.keyOffset[id];
      this.arena.copy(arena, at, from, from + this.keyLength[id]);
      this.keyOffset[id] = at;
      at += this.keyLength[id];
    }
    this.arena = arena;
    this.arenaUsed = at;
    this.arenaHoles = 0;
  }

  private keyOf(id: number): Buffer {
    const at = this.keyOffset[id];
    return Buffer.from(this.arena.subarray(at, at + this.keyLength[id]));
  }

  private store(id: number, rec: KeyRecord): void {
    const u = this.u32;
    const b = id * U32_FIELDS;
    u[b] = rec.dataId;
    u[b + 1] = rec.offset;
    u[b + 2] = rec.length;
    u[b + 3] = rec.crc;
    u[b + 4] = rec.idxId;
    u[b + 5] = rec.idxOffset;
    u[b + 6] = rec.idxPrevious;
    u[b + 7] = rec.parentId;
    u[b + 8] = rec.parentOffset;
    this.timestamp[id] = rec.timestamp;
  }

  private record(id: number): KeyRecord {
    const u = this.u32;
    const b = id * U32_FIELDS;
    return {
      keyLength: this.keyLength[id],
      dataId: u[b],
      offset: u[b + 1],
      length: u[b + 2],
      crc: u[b + 3],
      timestamp: this.timestamp[id],
      idxId: u[b + 4],
      idxOffset: u[b + 5],
      idxPrevious: u[b + 6],
      parentId: u[b + 7],
      parentOffset: u[b + 8],
    };
  }
}
