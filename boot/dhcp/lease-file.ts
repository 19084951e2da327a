// Lease persistence: a JSON snapshot (replaced atomically: temp file, fsync,
// rename) plus an append-only journal of LeaseRecords, one JSON line each.
//
// Why a journal with group commit: an ACK must not go out before its lease is
// on disk (a restarted server would hand the address to someone else), but an
// fsync per lease caps the server at a few hundred leases/s. Records that
// arrive while one write+fdatasync is in flight queue up and go out together
// in the next one, so each ACK waits for at most two syncs and the sync rate,
// not the lease rate, is bounded by the disk. The journal is folded into the
// snapshot at start and whenever it grows past twice the table.
//
// Records are written into a reused buffer as they arrive and waiters are
// plain callbacks: whatever waits for the sync outlives a young-generation
// collection or two, and copying it into the old generation was a large part
// of the server's time per lease.
import { readFile, mkdir, rm } from 'node:fs/promises';
import { close as closeFd, fdatasync, ftruncate, open as openFd, write, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname } from 'node:path';
import type { LeaseRecord } from './leases.ts';
import { writeFileDurably } from '../../lib/durable-file.ts';
import { JournalSyncThread, syncHere } from './journal-sync.ts';

export class LeaseFileError extends Error {}

/**
 * With a sync thread, a sync the disk answers within this runs on the calling thread: handing it over
 * and back costs more than it saves (in a 1,000-machine storm 92% of ACKs left within 10 ms of their
 * REQUEST by the server's clock with every sync on the thread, 99% inline). A slower one sends the
 * next syncs to the thread until one is fast again: a slow disk stalls the DHCP thread once, not at
 * every group.
 */
export const SLOW_SYNC_MS = 5;

interface Snapshot {
  version: 1;
  written: string;
  records: LeaseRecord[];
}

export interface LoadedLeases {
  records: LeaseRecord[];
  /** Journal lines that could not be read (a torn last line after a crash is normal). */
  skipped: number;
}

/** Called once the record is on disk, or with the reason it is not. */
export type Stored = (e?: LeaseFileError) => void;

const NEWLINE = 0x0a;

function isRecord(v: unknown): v is LeaseRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  if (typeof r.declined === 'string') return typeof r.until === 'number';
  // clientId is optional: journals written before client-ids keyed leases have none.
  return typeof r.mac === 'string' && typeof r.ip === 'string' && (r.state === 'bound' || r.state === 'released') && typeof r.expires === 'number' &&
    (r.clientId === undefined || typeof r.clientId === 'string');
}

export class LeaseFile {
  readonly path: string;
  readonly journalPath: string;
  /** Journal file descriptor; the plain fd API costs less per call than FileHandle on the hot path. */
  private journal: number | undefined;
  /** Journal lines not yet handed to write(): bytes 0..pendingBytes of `pending`. */
  private pending = Buffer.allocUnsafe(64 * 1024);
  private pendingBytes = 0;
  private pendingRecords = 0;
  /** The other buffer, free while `pending` fills (a write in flight holds the one it was given). */
  private spare = Buffer.allocUnsafe(64 * 1024);
  private waiters: Stored[] = [];
  private flushing: Promise<void> | undefined;
  private journalRecords = 0;
  private snapshotRecords = 0;
  private closed = false;
  /** The last write failed and may have left part of a line: the next write starts a new line. */
  private torn = false;
  private readonly snapshot: () => Iterable<LeaseRecord>;
  /** Write on the calling thread and sync on this one (see open()). */
  private readonly syncThread: JournalSyncThread | undefined;
  /** With a sync thread: whether the next sync goes to it (the last one was slow, or none was measured yet). */
  private syncOnThread = true;
  /** A sync taking longer than this is slow (SLOW_SYNC_MS unless open() was told otherwise). */
  private readonly slowSyncMs: number;

  private constructor(path: string, snapshot: () => Iterable<LeaseRecord>, syncThread: JournalSyncThread | undefined, slowSyncMs: number) {
    this.path = path;
    this.journalPath = `${path}.journal`;
    this.snapshot = snapshot;
    this.syncThread = syncThread;
    this.slowSyncMs = slowSyncMs;
  }

  /** Reads the snapshot and the journal; a missing file is an empty table. */
  static async load(path: string): Promise<LoadedLeases> {
    const records: LeaseRecord[] = [];
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new LeaseFileError(`cannot read leases file ${path}: ${(e as Error).message}`);
    }
    if (text !== undefined && text.trim() !== '') {
      let doc: Snapshot;
      try {
        doc = JSON.parse(text) as Snapshot;
      } catch {
        throw new LeaseFileError(`leases file ${path} is not valid JSON; move it away to start with an empty lease table`);
      }
      if (doc?.version !== 1 || !Array.isArray(doc.records)) {
        throw new LeaseFileError(`leases file ${path} has an unknown format (want version 1 with records); move it away to start afresh`);
      }
      for (const r of doc.records) if (isRecord(r)) records.push(r);
    }
    let skipped = 0;
    let journal = '';
    try {
      journal = await readFile(`${path}.journal`, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new LeaseFileError(`cannot read lease journal ${path}.journal: ${(e as Error).message}`);
    }
    for (const line of journal.split('\n')) {
      if (line === '') continue;
      try {
        const r = JSON.parse(line) as unknown;
        if (isRecord(r)) records.push(r);
        else skipped++;
      } catch {
        skipped++;
      }
    }
    return { records, skipped };
  }

  /**
   * Opens the file for appending, after folding the current state (from
   * `snapshot`) into a fresh snapshot so the journal starts empty.
   * `syncThread`: each group is written on the calling thread and synced on a
   * thread of the file's own (journal-sync.ts) while the disk is slow to
   * sync (SLOW_SYNC_MS), on the calling thread while it is fast, instead of
   * both in libuv's pool. For the DHCP thread: the pool is shared with the main thread's file
   * work (HTTP, TFTP), and an ACK's sync queued behind it was most of the
   * DHCP tail in a 1,000-machine storm (p99 31-55 ms, 20-30 ms on the DHCP
   * thread itself); syncing on the DHCP thread itself made every packet wait
   * for a slow disk.
   */
  static async open(path: string, snapshot: () => Iterable<LeaseRecord>, opts: { syncThread?: boolean; slowSyncMs?: number } = {}): Promise<LeaseFile> {
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (e) {
      throw new LeaseFileError(`cannot create the directory of leases file ${path}: ${(e as Error).message}`);
    }
    const thread = opts.syncThread ? await JournalSyncThread.start() : undefined;
    const f = new LeaseFile(path, snapshot, thread, opts.slowSyncMs ?? SLOW_SYNC_MS);
    try {
      await f.compact();
      f.journal = await promisify(openFd)(f.journalPath, 'a').catch((e: Error) => {
        throw new LeaseFileError(`cannot open lease journal ${f.journalPath}: ${e.message}`);
      });
    } catch (e) {
      await thread?.close();
      throw e;
    }
    return f;
  }

  /** Where the next group is synced: on the sync thread, on the calling thread, or in libuv's pool (no sync thread). */
  get syncsOn(): 'thread' | 'caller' | 'pool' {
    return !this.syncThread ? 'pool' : this.syncOnThread ? 'thread' : 'caller';
  }

  /** Queues a record; resolves once it is on disk (fdatasync), rejects when it could not be written. */
  append(record: LeaseRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => this.store(record, (e) => (e ? reject(e) : resolve())));
  }

  /** append() for the hot path: `done` runs once the record is on disk, or with the error when it could not be written. */
  store(record: LeaseRecord, done: Stored): void {
    if (this.closed) {
      done(new LeaseFileError('lease file is closed'));
      return;
    }
    const line = JSON.stringify(record);
    // UTF-8 needs at most 3 bytes per UTF-16 unit, plus the newline.
    const need = this.pendingBytes + line.length * 3 + 1;
    if (need > this.pending.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, 2 * this.pending.length));
      this.pending.copy(bigger, 0, 0, this.pendingBytes);
      this.pending = bigger;
    }
    this.pendingBytes += this.pending.write(line, this.pendingBytes);
    this.pending[this.pendingBytes++] = NEWLINE;
    this.pendingRecords++;
    this.waiters.push(done);
    // Start on the next turn so records from packets read in this poll round share one sync.
    if (!this.flushing) this.flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  /** Waits for queued records, folds the journal into the snapshot and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    if (this.journal !== undefined) await promisify(closeFd)(this.journal);
    this.journal = undefined;
    await this.syncThread?.close();
    await this.compact();
  }

  private async drain(): Promise<void> {
    while (this.pendingBytes > 0) {
      const buf = this.pending;
      const bytes = this.pendingBytes;
      const records = this.pendingRecords;
      const waiters = this.waiters;
      this.pending = this.spare;
      this.pendingBytes = 0;
      this.pendingRecords = 0;
      this.waiters = [];
      try {
        // Without the newline, the first record after a torn write would merge into the torn line and be skipped on load.
        await this.writeAndSync(this.torn ? Buffer.concat([Buffer.of(NEWLINE), buf.subarray(0, bytes)]) : buf.subarray(0, bytes));
        this.torn = false;
        this.journalRecords += records;
        for (const w of waiters) w();
      } catch (e) {
        this.torn = true;
        const err = new LeaseFileError(`cannot write lease journal ${this.journalPath}: ${(e as Error).message}`);
        for (const w of waiters) w(err);
      }
      // Written (or failed): free to fill again.
      this.spare = buf;
      if (this.journalRecords > Math.max(10_000, 2 * this.snapshotRecords)) {
        try {
          await this.compact();
          await promisify(ftruncate)(this.journal!, 0);
          this.journalRecords = 0;
        } catch {
          // Compaction is an optimisation: the journal still holds everything.
        }
      }
    }
    this.flushing = undefined;
  }

  private writeAndSync(buf: Buffer): Promise<void> {
    const fd = this.journal!;
    if (this.syncThread) {
      try {
        for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
        if (!this.syncOnThread) {
          this.syncOnThread = syncHere(fd) > this.slowSyncMs;
          return Promise.resolve();
        }
      } catch (e) {
        return Promise.reject(e as Error);
      }
      return this.syncThread.sync(fd).then((ms) => {
        this.syncOnThread = ms > this.slowSyncMs;
      });
    }
    return new Promise((resolve, reject) => {
      const from = (off: number) =>
        write(fd, buf, off, buf.length - off, null, (err, n) => {
          if (err) return reject(err);
          if (off + n < buf.length) return from(off + n);
          fdatasync(fd, (e) => (e ? reject(e) : resolve()));
        });
      from(0);
    });
  }

  /**
   * The snapshot document, as JSON.stringify would write it, built one record
   * at a time: the records of a large table are never all alive at once.
   */
  private snapshotText(): Buffer {
    const head: Omit<Snapshot, 'records'> = { version: 1, written: new Date().toISOString() };
    let out = Buffer.allocUnsafe(64 * 1024);
    let used = out.write(`${JSON.stringify(head).slice(0, -1)},"records":[`);
    let count = 0;
    for (const r of this.snapshot()) {
      const line = JSON.stringify(r);
      if (used + line.length * 3 + 3 > out.length) {
        const bigger = Buffer.allocUnsafe(2 * out.length + line.length * 3);
        out.copy(bigger, 0, 0, used);
        out = bigger;
      }
      if (count++ > 0) out[used++] = 0x2c; // ','
      used += out.write(line, used);
    }
    used += out.write(']}', used);
    this.snapshotRecords = count;
    return out.subarray(0, used);
  }

  /** Writes the whole state as the new snapshot, atomically. */
  private async compact(): Promise<void> {
    const text = this.snapshotText();
    try {
      await writeFileDurably(this.path, text);
    } catch (e) {
      throw new LeaseFileError(`cannot write leases file ${this.path}: ${(e as Error).message}`);
    }
    if (!this.journal) {
      // At open and close the journal's content is in the snapshot now.
      await rm(this.journalPath, { force: true });
    }
  }
}
