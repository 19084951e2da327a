// What a namespace's files say right now: the key map, where the next data
// and index entries go, the live byte and id counters, and the writes that
// move them (append a data entry, append or rewrite an index entry, flag one
// deleted). Recovery builds it from the files and hands it over; the
// namespace then changes it only through these writes.
import {
  DATA_ENTRY_SIZE,
  DATA_HEADER_SIZE,
  encodeDataHeader,
  encodeIndexHeader,
  INDEX_ENTRY_DELETED,
  INDEX_ENTRY_SIZE,
  INDEX_FLAGS_OFFSET,
  INDEX_HEADER_SIZE,
  MODE_SEQ,
  MODE_USER,
  writeDataEntryHead,
  writeIndexEntry,
} from '../format/index.ts';
import type { IndexEntry } from '../format/index.ts';
import type { FileSet } from './file-set.ts';
import { syncDirs } from './file-set.ts';
import { KeyIndex } from './key-index.ts';
import type { KeyRecord } from './records.ts';
import type { NsMode } from './types.ts';

/** Bytes of undo keys kept between batches (a bigger buffer, grown by a large FLUSH, is let go). */
const UNDO_KEYS_KEPT = 64 * 1024;

/** Append positions and counters; also what a write error rolls back to. */
interface Totals {
  liveBytes: number;
  nextEntry: number;
  dataEnd: number;
  dataPrevious: number;
  indexEnd: number;
  indexPrevious: number;
  indexPreviousFile: number;
}

export class LiveState {
  readonly dataFiles: FileSet;
  readonly indexFiles: FileSet;
  private readonly keys = new KeyIndex();
  private currentMode: NsMode;
  /** --sync: a file jump syncs the old files and the directories */
  private readonly sync: boolean;
  /** current data/index file id (they move in lockstep) */
  private current = 0;
  /**
   * dataEnd/indexEnd: append offsets in the current files; dataPrevious:
   * offset of the last data entry written; indexPrevious (in file
   * indexPreviousFile): the last index entry appended (either may be in an
   * earlier file). nextEntry is the reference's `nextentry`: seq = index
   * entries so far (the next id), user = keys inserted.
   */
  private t: Totals = { liveBytes: 0, nextEntry: 0, dataEnd: DATA_HEADER_SIZE, dataPrevious: 0, indexEnd: INDEX_HEADER_SIZE, indexPrevious: 0, indexPreviousFile: 0 };

  private dataScratch = Buffer.allocUnsafe(64 * 1024);
  private indexScratch = Buffer.allocUnsafe(INDEX_ENTRY_SIZE + 256);
  /** index files changed in place (a deleted flag, a sequential rewrite) since the last INDEX DIRTY RESET; appends do not count, as in 0-db */
  private readonly rewritten = new Set<number>();
  /**
   * With batched writes: each key's record before each change still waiting
   * in the file sets' buffers (undefined: the key was absent), and the
   * totals before the first. A write error drops those buffers; the key map
   * goes back to this (undone newest first, so the oldest record of a key
   * wins), so an acknowledged value is never hidden by a lost change.
   */
  private undoRecs: (KeyRecord | undefined)[] = [];
  /** the keys of undoRecs, copied end to end (undoEnds[i]: where key i ends): no allocation per write */
  private undoKeys = Buffer.allocUnsafe(UNDO_KEYS_KEPT);
  private undoEnds: number[] = [];
  private undoTotals: Totals | undefined;

  constructor(files: { dataFiles: FileSet; indexFiles: FileSet }, mode: NsMode, opts: { sync: boolean; batchWrites?: boolean }) {
    this.dataFiles = files.dataFiles;
    this.indexFiles = files.indexFiles;
    this.currentMode = mode;
    this.sync = opts.sync;
    if (opts.batchWrites === true) {
      // the index set is written after the data set: once it has nothing pending, every change is in the files
      this.indexFiles.onSettled = () => this.forgetUndo();
      // a failure of either set reaches the index set too: the buffers are gone, the key map follows at once
      this.indexFiles.onFailed = () => this.rollBack();
    }
  }

  get mode(): NsMode {
    return this.currentMode;
  }

  get fileId(): number {
    return this.current;
  }

  /** The positions and counters, read-only (only the writes below change them). */
  get totals(): Readonly<Totals> {
    return this.t;
  }

  get size(): number {
    return this.keys.size;
  }

  /** Sum of the live keys' lengths. */
  get totalKeyLength(): number {
    return this.keys.totalKeyLength;
  }

  /** The key's record: a copy, changed only through the writes below. */
  find(key: Buffer): KeyRecord | undefined {
    return this.keys.get(key);
  }

  /** Every live key with its record, in insertion order (a snapshot: changing the index while walking it is safe). */
  entries(): [Buffer, KeyRecord][] {
    return this.keys.entries();
  }

  modeByte(): number {
    return this.currentMode === 'seq' ? MODE_SEQ : MODE_USER;
  }

  /** A namespace that never held an entry may change mode (the header byte of i0 follows). */
  changeMode(mode: NsMode): boolean {
    if (this.t.nextEntry > 0 || this.keys.size > 0 || this.current > 0 || this.t.indexEnd > INDEX_HEADER_SIZE) return false;
    this.currentMode = mode;
    this.indexFiles.write(0, Buffer.from([this.modeByte()]), 1, 28);
    return true;
  }

  dirtyIndexFiles(): number[] {
    return [...this.rewritten].sort((a, b) => a - b);
  }

  resetDirtyIndexFiles(): void {
    this.rewritten.clear();
  }

  // ---- undo of batched writes -----------------------------------------

  /** Notes a key's record (`rec`, the caller's lookup) before a change that is buffered, not yet written. */
  remember(key: Buffer, rec: KeyRecord | undefined): void {
    if (this.indexFiles.onSettled === undefined) return;
    // a copy: the caller's key may be a view of a socket read buffer
    const start = this.undoEnds.length > 0 ? this.undoEnds[this.undoEnds.length - 1] : 0;
    if (start + key.length > this.undoKeys.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.undoKeys.length * 2, start + key.length));
      this.undoKeys.copy(grown, 0, 0, start);
      this.undoKeys = grown;
    }
    key.copy(this.undoKeys, start);
    this.undoEnds.push(start + key.length);
    this.undoRecs.push(rec);
    this.undoTotals ??= { ...this.t };
  }

  private forgetUndo(): void {
    if (this.undoRecs.length > 0) {
      this.undoRecs = [];
      this.undoEnds = [];
      // a FLUSH of many keys grew it: not kept for the small batches that follow
      if (this.undoKeys.length > UNDO_KEYS_KEPT) this.undoKeys = Buffer.allocUnsafe(UNDO_KEYS_KEPT);
    }
    this.undoTotals = undefined;
  }

  /** After a write error: the key map as the files hold it. */
  private rollBack(): void {
    for (let i = this.undoRecs.length - 1; i >= 0; i--) {
      const key = this.undoKeys.subarray(i > 0 ? this.undoEnds[i - 1] : 0, this.undoEnds[i]);
      const rec = this.undoRecs[i];
      if (rec) this.keys.set(key, rec);
      else this.keys.delete(key);
    }
    if (this.undoTotals) this.t = this.undoTotals;
    this.forgetUndo();
  }

  // ---- files ------------------------------------------------------------

  /** Creates i<id> and d<id> (headers only) and makes them current. */
  openFilePair(id: number, now: number): void {
    // old files keep their data: flush them now so a jump never leaves an unsynced tail behind
    if (id > 0 && this.sync) {
      this.dataFiles.syncNowSync();
      this.indexFiles.syncNowSync();
    }
    this.indexFiles.create(id, encodeIndexHeader({ created: now, opened: now, fileId: id, mode: this.modeByte() }));
    // 0-db writes no times in data headers, so replicas hold identical files
    this.dataFiles.create(id, encodeDataHeader({ created: 0, opened: 0, fileId: id }));
    this.current = id;
    this.t.indexEnd = INDEX_HEADER_SIZE;
    this.t.dataEnd = DATA_HEADER_SIZE;
    if (this.sync) syncDirs(this.indexFiles.dir, this.dataFiles.dir);
  }

  /** Makes index file `fileId` current, creating it (header only) when missing; appends go at its end. */
  startIndexFile(fileId: number, now: number): void {
    if (!this.indexFiles.exists(fileId)) {
      this.indexFiles.create(fileId, encodeIndexHeader({ created: now, opened: now, fileId, mode: this.modeByte() }));
    }
    this.resumeIndex(fileId, this.indexFiles.size(fileId));
  }

  /** Recovery: index appends continue in file `fileId` at `end`. */
  resumeIndex(fileId: number, end: number): void {
    this.current = fileId;
    this.t.indexEnd = end;
  }

  /** Recovery: data appends continue in file `fileId` (the index's too) at `end`. */
  resumeData(fileId: number, end: number): void {
    this.current = fileId;
    this.t.dataEnd = end;
  }

  /** Recovery: the last data entry in the files is at `offset`. */
  noteDataEntry(offset: number): void {
    this.t.dataPrevious = offset;
  }

  /** One write: entry header + key + payload at the end of the current data file. */
  appendData(key: Buffer, payload: Buffer, flags: number, crc: number, timestamp: number): number {
    const size = DATA_ENTRY_SIZE + key.length + payload.length;
    if (this.dataScratch.length < size) this.dataScratch = Buffer.allocUnsafe(Math.max(size, this.dataScratch.length * 2));
    const buf = this.dataScratch;
    const n = writeDataEntryHead(buf, 0, { length: payload.length, previous: this.t.dataPrevious, crc, flags, timestamp }, key);
    payload.copy(buf, n);
    const offset = this.t.dataEnd;
    this.dataFiles.append(this.current, buf, size, offset);
    this.t.dataEnd += size;
    this.t.dataPrevious = offset;
    return offset;
  }

  private writeIndexAt(fileId: number, offset: number, e: IndexEntry): void {
    this.rewritten.add(fileId);
    const n = writeIndexEntry(this.indexScratch, 0, e);
    this.indexFiles.write(fileId, this.indexScratch, n, offset);
  }

  /** `e.previous` must be the current indexPrevious (the caller builds the entry: no copy per append). */
  private appendIndex(e: IndexEntry): number {
    const offset = this.t.indexEnd;
    const n = writeIndexEntry(this.indexScratch, 0, e);
    this.indexFiles.append(this.current, this.indexScratch, n, offset);
    this.t.indexEnd += INDEX_ENTRY_SIZE + e.key.length;
    this.t.indexPrevious = offset;
    this.t.indexPreviousFile = this.current;
    return offset;
  }

  private flagDeleted(idxId: number, idxOffset: number): void {
    this.rewritten.add(idxId);
    this.indexFiles.write(idxId, DELETED_FLAG, 1, idxOffset + INDEX_FLAGS_OFFSET);
  }

  // ---- the key map follows the index ------------------------------------

  /** Index side of a SET whose data entry is at (dataId, offset); also used to rebuild from data. */
  commitSet(key: Buffer, existing: KeyRecord | undefined, dataId: number, offset: number, length: number, crc: number, timestamp: number): void {
    if (this.currentMode === 'seq') {
      if (existing) this.commitSeqUpdate(key, existing, dataId, offset, length, crc, timestamp);
      else {
        const prev = this.t.indexPrevious;
        const idxOffset = this.appendIndex({ key, offset, length, previous: prev, flags: 0, dataId, timestamp, crc, parentId: 0, parentOffset: 0 });
        this.keys.set(key, {
          keyLength: key.length, dataId, offset, length, crc, timestamp,
          idxId: this.current, idxOffset, idxPrevious: prev, parentId: 0, parentOffset: 0,
        });
        this.t.nextEntry++;
        this.t.liveBytes += length;
      }
      return;
    }
    let parentId = 0;
    let parentOffset = 0;
    if (existing) {
      parentId = existing.idxId;
      parentOffset = existing.idxOffset;
      this.t.liveBytes -= existing.length;
    } else {
      this.t.nextEntry++;
    }
    const prev = this.t.indexPrevious;
    // as 0-db: an insert's entry says dataid 0 (readers take the index file's
    // id, the two move in lockstep); an update's entry carries the real id
    const written = existing ? dataId : 0;
    const idxOffset = this.appendIndex({ key, offset, length, previous: prev, flags: 0, dataId: written, timestamp, crc, parentId, parentOffset });
    // the old entry is flagged once its replacement is written, never before
    if (existing) this.flagDeleted(existing.idxId, existing.idxOffset);
    this.keys.set(key, {
      keyLength: key.length, dataId, offset, length, crc, timestamp,
      idxId: this.current, idxOffset, idxPrevious: prev, parentId, parentOffset,
    });
    this.t.liveBytes += length;
  }

  /**
   * Sequential update, as the reference: append a copy of the old entry
   * flagged deleted (it takes an id), then rewrite the entry at the key's own
   * position with the new data, its history pointing at the copy.
   */
  private commitSeqUpdate(key: Buffer, existing: KeyRecord, dataId: number, offset: number, length: number, crc: number, timestamp: number): void {
    const copyOffset = this.appendIndex({
      key,
      previous: this.t.indexPrevious,
      offset: existing.offset,
      length: existing.length,
      flags: INDEX_ENTRY_DELETED,
      dataId: existing.dataId,
      timestamp: existing.timestamp,
      crc: existing.crc,
      parentId: existing.parentId,
      parentOffset: existing.parentOffset,
    });
    const copyId = this.current;
    this.t.nextEntry++;
    this.writeIndexAt(existing.idxId, existing.idxOffset, {
      key, offset, length, previous: existing.idxPrevious, flags: 0, dataId, timestamp, crc, parentId: copyId, parentOffset: copyOffset,
    });
    this.t.liveBytes += length - existing.length;
    this.keys.set(key, { ...existing, dataId, offset, length, crc, timestamp, parentId: copyId, parentOffset: copyOffset });
  }

  /** Index side of a DEL (flag in place) and the memory map. */
  commitDelete(key: Buffer, rec: KeyRecord): void {
    this.flagDeleted(rec.idxId, rec.idxOffset);
    this.keys.delete(key);
    this.t.liveBytes -= rec.length;
  }

  /** Recovery: an index entry read from index file `fileId` at `at`, applied as the reference replays it. */
  loadEntry(fileId: number, at: number, e: IndexEntry): void {
    const deleted = (e.flags & INDEX_ENTRY_DELETED) !== 0;
    this.t.indexPrevious = at;
    this.t.indexPreviousFile = fileId;
    const rec = {
      keyLength: e.key.length, dataId: e.dataId, offset: e.offset, length: e.length, crc: e.crc, timestamp: e.timestamp,
      idxId: fileId, idxOffset: at, idxPrevious: e.previous, parentId: e.parentId, parentOffset: e.parentOffset,
    };
    if (this.currentMode === 'seq') {
      // ids are positions: every entry (deleted copies included) takes one
      this.t.nextEntry++;
      if (!deleted) {
        const old = this.keys.get(e.key);
        if (old) this.t.liveBytes -= old.length;
        this.keys.set(e.key, rec);
        this.t.liveBytes += e.length;
      }
      return;
    }
    // user mode replays like the reference: insert or update, then delete if flagged
    const old = this.keys.get(e.key);
    if (old) this.t.liveBytes -= old.length;
    else this.t.nextEntry++;
    if (deleted) {
      this.keys.delete(e.key);
      return;
    }
    this.keys.set(e.key, rec);
    this.t.liveBytes += e.length;
  }
}

const DELETED_FLAG = Buffer.from([INDEX_ENTRY_DELETED]);
