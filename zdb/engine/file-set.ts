// Numbered files of one namespace (`d<N>` or `i<N>`): an fd cache and
// positional reads/writes. Every write goes to an explicit position (no
// O_APPEND: Linux ignores the position of pwrite on O_APPEND descriptors, and
// DEL must rewrite an index flag in place).
import fs from 'node:fs';
import path from 'node:path';
import { IoMeter, type IoCounters } from './io-stats.ts';

export class FileSet {
  readonly dir: string;
  readonly prefix: string;
  private fds = new Map<number, number>();
  /** fds written since the last sync (for group commit) */
  readonly dirty = new Set<number>();

  /** write batching: appends wait in `pending` until flush() (see EngineOptions.batchWrites) */
  private batching: boolean;
  private pending = Buffer.allocUnsafe(0);
  private pendingLength = 0;
  private pendingId = -1;
  private pendingStart = 0;
  private flushScheduled = false;
  /** a failure that dropped writes, not yet reported by flush() (the flush run before acknowledging) */
  private lost: Error | undefined;
  /** the other file set of the namespace: a failure of either fails both, and `first` is written before this one */
  private partner: FileSet | undefined;
  private first: FileSet | undefined;
  /**
   * The write error (ENOSPC, EIO) that failed this set: unwritten appends and
   * in-place changes are dropped, the failed append is cut off the file, and
   * every later write is refused until the namespace is reopened.
   */
  failure: Error | undefined;
  /** in-place writes made while appends were batched: they land after those appends */
  private deferred: { id: number; buf: Buffer; position: number }[] = [];

  /** bytes and failures of this set's reads and writes */
  readonly io: IoMeter;
  /** called when a write left nothing pending in this set and the one written before it */
  onSettled: (() => void) | undefined;
  /** called once when this set fails (directly or through its partner), after both dropped their buffers */
  onFailed: (() => void) | undefined;

  constructor(dir: string, prefix: string, batching = false, totals?: IoCounters) {
    this.dir = dir;
    this.prefix = prefix;
    this.batching = batching;
    this.io = new IoMeter(totals);
  }

  /**
   * Appends at `position` (the end of file `id`). With batching the bytes are
   * kept until flush() (called by every read of that region, sync(), and a
   * the end of the event-loop turn at the latest), turning many small appends into one write.
   */
  append(id: number, buf: Buffer, length: number, position: number): void {
    if (this.failure) throw this.failure;
    if (!this.batching) {
      try {
        return this.writeNow(id, buf, length, position);
      } catch (err) {
        this.failAppend(err as Error, id, position);
        throw err;
      }
    }
    if (this.pendingLength > 0 && (id !== this.pendingId || position !== this.pendingStart + this.pendingLength)) this.writePending();
    if (this.pendingLength === 0) {
      this.pendingId = id;
      this.pendingStart = position;
    }
    const need = this.pendingLength + length;
    if (need > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.pending.length * 2, 64 * 1024));
      this.pending.copy(grown, 0, 0, this.pendingLength);
      this.pending = grown;
    }
    buf.copy(this.pending, this.pendingLength, 0, length);
    this.pendingLength = need;
    if (this.pendingLength >= 4 * 1024 * 1024) this.writePending();
    else this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After this event-loop turn, not after this callback: appends of every
      // client served in the turn then share one write per file. Durability
      // does not depend on it: the server flushes before it acknowledges.
      setImmediate(() => {
        this.flushScheduled = false;
        try {
          this.writePending();
        } catch {
          // fail() kept the error for the next flush() and refuses later writes; no crash from a callback
        }
      });
    }
  }

  /**
   * Pairs an index set with its data set: the data's pending appends are
   * written before the index's, and a write error in either drops the
   * pending writes of both (index entries must never point at lost data).
   */
  static pair(data: FileSet, index: FileSet): void {
    data.partner = index;
    index.partner = data;
    index.first = data;
  }

  /**
   * Writes pending appends (one write call). Throws when a write failure
   * dropped writes since the last flush(), even one that happened in another
   * call: the server runs it before acknowledging.
   */
  flush(): void {
    try {
      this.writePending();
    } catch {
      // fail() recorded it in `lost`
    }
    if (this.lost) {
      const err = this.lost;
      this.lost = undefined;
      throw err;
    }
  }

  private writePending(): void {
    // every write entry point refuses a failed set; here there is nothing left to write
    if (this.failure) return;
    this.first?.writePending();
    if (this.pendingLength > 0) {
      const length = this.pendingLength;
      this.pendingLength = 0;
      try {
        this.writeNow(this.pendingId, this.pending, length, this.pendingStart);
      } catch (err) {
        this.failAppend(err as Error, this.pendingId, this.pendingStart);
        throw err;
      }
    }
    const deferred = this.deferred;
    this.deferred = [];
    for (const w of deferred) {
      try {
        this.writeNow(w.id, w.buf, w.buf.length, w.position);
      } catch (err) {
        this.fail(err as Error);
        throw err;
      }
    }
    if (this.onSettled && this.settled() && (this.first?.settled() ?? true)) this.onSettled();
  }

  /** Nothing waits to be written (appends or in-place changes). */
  settled(): boolean {
    return this.pendingLength === 0 && this.deferred.length === 0;
  }

  /** A failed append: cut the file back to where the append began (best effort; RELOAD recovery cuts torn tails too). */
  private failAppend(err: Error, id: number, position: number): void {
    this.fail(err);
    try {
      fs.ftruncateSync(this.fd(id), position);
    } catch {
      // the namespace is refused writes either way; recovery at RELOAD handles the tail
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.lost = err;
    this.pendingLength = 0;
    // in-place changes (deleted flags) must not land when the entries replacing them did not
    this.deferred = [];
    this.partner?.fail(err);
    this.onFailed?.();
  }

  private overlapsPending(id: number, position: number, length: number): boolean {
    return this.pendingLength > 0 && id === this.pendingId && position + length > this.pendingStart;
  }

  path(id: number): string {
    return path.join(this.dir, `${this.prefix}${id}`);
  }

  exists(id: number): boolean {
    return fs.existsSync(this.path(id));
  }

  /** Ids below the highest file of this set that are missing (moved away, e.g. to slower storage). */
  gaps(): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    let highest = -1;
    for (const name of names) {
      if (!name.startsWith(this.prefix)) continue;
      const digits = name.slice(this.prefix.length);
      if (/^\d+$/.test(digits)) highest = Math.max(highest, Number(digits));
    }
    const out: number[] = [];
    for (let id = 0; id < highest; id++) if (!this.exists(id)) out.push(id);
    return out;
  }

  /** Ids 0..n-1 that exist without a gap, like the reference's availability check. */
  count(): number {
    let n = 0;
    while (this.exists(n)) n++;
    return n;
  }

  size(id: number): number {
    if (id === this.pendingId) this.writePending();
    return fs.fstatSync(this.fd(id)).size;
  }

  fd(id: number): number {
    let fd = this.fds.get(id);
    if (fd === undefined) {
      fd = fs.openSync(this.path(id), 'r+');
      this.fds.set(id, fd);
    }
    return fd;
  }

  /** Creates file `id` holding exactly `header` (replacing any old file). */
  create(id: number, header: Buffer): void {
    if (this.failure) throw this.failure;
    this.writePending();
    this.closeOne(id);
    const fd = fs.openSync(this.path(id), 'w+', 0o600);
    this.fds.set(id, fd);
    try {
      if (fs.writeSync(fd, header, 0, header.length, 0) !== header.length) throw new Error(`short write of ${this.path(id)} header`);
      this.io.wrote(header.length);
    } catch (err) {
      this.io.failed('write');
      this.fail(err as Error);
      throw err;
    }
    this.dirty.add(fd);
  }

  write(id: number, buf: Buffer, length: number, position: number): void {
    if (this.failure) throw this.failure;
    if (this.overlapsPending(id, position, length)) this.writePending();
    else if (this.pendingLength > 0 || this.deferred.length > 0 || (this.first !== undefined && !this.first.settled())) {
      // an in-place change (a deleted flag, a rewritten entry) never reaches the
      // file before the appended entry that replaces it (here or in the data set written first)
      this.deferred.push({ id, buf: Buffer.from(buf.subarray(0, length)), position });
      this.scheduleFlush();
      return;
    }
    try {
      this.writeNow(id, buf, length, position);
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
  }

  private writeNow(id: number, buf: Buffer, length: number, position: number): void {
    const fd = this.fd(id);
    let done = 0;
    try {
      while (done < length) done += fs.writeSync(fd, buf, done, length - done, position + done);
    } catch (err) {
      this.io.wrote(done);
      this.io.failed('write');
      throw err;
    }
    this.io.wrote(length);
    this.dirty.add(fd);
  }

  /** Reads exactly `length` bytes, or fewer at the end of the file. */
  read(id: number, position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    const n = this.readInto(id, buf, position, length);
    return n === length ? buf : buf.subarray(0, n);
  }

  readInto(id: number, buf: Buffer, position: number, length: number): number {
    if (this.overlapsPending(id, position, length) || this.deferred.length > 0) this.writePending();
    const fd = this.fd(id);
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(fd, buf, done, length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      this.io.failed('read');
      throw err;
    } finally {
      this.io.read(done);
    }
    return done;
  }

  readAll(id: number): Buffer {
    this.writePending();
    try {
      const all = fs.readFileSync(this.path(id));
      this.io.read(all.length);
      return all;
    } catch (err) {
      this.io.failed('read');
      throw err;
    }
  }

  truncate(id: number, length: number): void {
    this.writePending();
    fs.ftruncateSync(this.fd(id), length);
    this.dirty.add(this.fd(id));
  }

  remove(id: number): void {
    this.writePending();
    this.closeOne(id);
    fs.rmSync(this.path(id), { force: true });
  }

  /** Takes the dirty set for a sync batch. */
  takeDirty(): number[] {
    // a sync acknowledges too: it reports dropped writes
    this.flush();
    const fds = [...this.dirty];
    this.dirty.clear();
    return fds;
  }

  syncNowSync(): void {
    for (const fd of this.takeDirty()) fs.fdatasyncSync(fd);
  }

  closeOne(id: number): void {
    const fd = this.fds.get(id);
    if (fd === undefined) return;
    this.fds.delete(id);
    this.dirty.delete(fd);
    fs.closeSync(fd);
  }

  close(): void {
    if (!this.failure) this.writePending();
    for (const id of [...this.fds.keys()]) this.closeOne(id);
  }
}

/** fsync of directories, so files created in them survive a crash. */
export function syncDirs(...dirs: string[]): void {
  for (const dir of dirs) {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}
