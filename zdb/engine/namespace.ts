// One namespace: its descriptor, settings and locks, the checks of every
// write, and the reads; the key map and the file writes are its LiveState,
// built by recovery when it opens. Writes are synchronous (fs.*Sync) so the order
// on disk is the order of calls: data entry first, then the index entry, one
// write each; the server acknowledges after the call returns (and after
// Engine.sync() with --sync).
import fs from 'node:fs';
import path from 'node:path';
import { writeFileDurably } from './durable-write.ts';
import {
  crc32c,
  DATA_ENTRY_DELETED,
  DATA_ENTRY_SIZE,
  DATA_HEADER_SIZE,
  decodeCursor,
  decodeNsDescriptor,
  encodeCursor,
  encodeNsDescriptor,
  INDEX_ENTRY_SIZE,
  INDEX_HEADER_SIZE,
  readDataEntryHeader,
  readIndexEntry,
} from '../format/index.ts';
import type { IndexEntry, NsDescriptor } from '../format/index.ts';
import { ZdbEngineError, ZdbWriteFailure } from './errors.ts';
import type { IoCounters } from './io-stats.ts';
import { FileSet } from './file-set.ts';
import { decodeHistoryKey, encodeHistoryKey } from './history-key.ts';
import { seqKey } from './records.ts';
import type { KeyRecord } from './records.ts';
import type { LiveState } from './live-state.ts';
import { recoverNamespace } from './recovery.ts';
import type { Recovered } from './recovery.ts';
import { IndexWalker } from './scan.ts';
import type { EngineOptions, EntryMeta, HistoryItem, Namespace, NsMode, NsSettings, NsStats, RawDataEntry, ScanPage } from './types.ts';

export const DESCRIPTOR_FILE = 'zdb-namespace';
/** sizeof(index_entry_t) in the reference's memory, which NSINFO's index_size_bytes counts per key. */
const REFERENCE_MEMORY_ENTRY = 64;
/** ZDB_DATA_MAX_PAYLOAD: a data entry header claiming more is damage, not data */
const MAX_PAYLOAD = 8 * 1024 * 1024;

export interface NamespaceContext {
  opts: EngineOptions;
  /** process-wide disk I/O totals (INFO) */
  io: { index: IoCounters; data: IoCounters };
  now(): number;
  hook(event: string, ...args: string[]): void;
  /** tells the engine files were written (synctime timer) */
  written(): void;
  log(line: string): void;
}

export class ZdbNamespace implements Namespace {
  readonly name: string;
  private readonly ctx: NamespaceContext;
  readonly dataFiles: FileSet;
  readonly indexFiles: FileSet;
  /** the key map, append positions and counters, and the writes that move them */
  private readonly state: LiveState;
  private desc: NsDescriptor;
  private locked = false;
  private frozen = false;
  private lastJump: number;
  /** what opening had to repair (torn tails cut, entries replayed) */
  readonly recoveryLog: readonly string[];
  private closed = false;

  private constructor(ctx: NamespaceContext, name: string, desc: NsDescriptor, recovered: Recovered) {
    this.ctx = ctx;
    this.name = name;
    this.desc = desc;
    this.state = recovered.state;
    this.dataFiles = recovered.state.dataFiles;
    this.indexFiles = recovered.state.indexFiles;
    this.recoveryLog = recovered.log;
    this.lastJump = ctx.now();
  }

  /** Opens (creating when `create`) a namespace; throws ZdbEngineError on files it must refuse. */
  static open(ctx: NamespaceContext, name: string, create: boolean): ZdbNamespace {
    const indexDir = path.join(ctx.opts.indexDir, name);
    const descPath = path.join(indexDir, DESCRIPTOR_FILE);
    let desc: NsDescriptor;
    if (fs.existsSync(descPath)) {
      try {
        desc = decodeNsDescriptor(fs.readFileSync(descPath));
      } catch (err) {
        throw new ZdbEngineError(`namespace ${name}: ${descPath}: ${(err as Error).message}; fix or remove the namespace`);
      }
    } else if (create) {
      fs.mkdirSync(indexDir, { recursive: true });
      desc = { name, password: '', maxsize: 0n, public: true, worm: false };
      writeFileDurably(descPath, encodeNsDescriptor(desc), 0o600);
    } else {
      throw new ZdbEngineError(`namespace ${name}: no descriptor ${descPath}`);
    }
    fs.mkdirSync(path.join(ctx.opts.dataDir, name), { recursive: true });
    const batching = ctx.opts.batchWrites === true;
    const files = {
      dataFiles: new FileSet(path.join(ctx.opts.dataDir, name), 'd', batching, ctx.io.data),
      indexFiles: new FileSet(indexDir, 'i', batching, ctx.io.index),
    };
    FileSet.pair(files.dataFiles, files.indexFiles);
    let recovered: Recovered;
    try {
      recovered = recoverNamespace(ctx, name, files);
    } catch (err) {
      files.dataFiles.close();
      files.indexFiles.close();
      throw err;
    }
    return new ZdbNamespace(ctx, name, desc, recovered);
  }

  /** The current data/index file id. */
  get fileId(): number {
    return this.state.fileId;
  }

  // ---- settings -------------------------------------------------------

  settings(): NsSettings {
    return {
      password: this.desc.password === '' ? undefined : this.desc.password,
      public: this.desc.public,
      worm: this.desc.worm,
      maxsize: this.desc.maxsize,
      locked: this.locked,
      frozen: this.frozen,
      mode: this.state.mode,
    };
  }

  update(changes: Partial<NsSettings>): void {
    if (changes.mode !== undefined) this.changeMode(changes.mode);
    if (changes.locked !== undefined) this.locked = changes.locked;
    if (changes.frozen !== undefined) this.frozen = changes.frozen;
    const next = { ...this.desc };
    if ('password' in changes) next.password = changes.password ?? '';
    if (changes.public !== undefined) next.public = changes.public;
    if (changes.worm !== undefined) next.worm = changes.worm;
    if (changes.maxsize !== undefined) next.maxsize = changes.maxsize;
    if (
      next.password !== this.desc.password ||
      next.public !== this.desc.public ||
      next.worm !== this.desc.worm ||
      next.maxsize !== this.desc.maxsize
    ) {
      this.writeDescriptor(next);
    }
  }

  private writeDescriptor(next: NsDescriptor): void {
    writeFileDurably(path.join(this.indexFiles.dir, DESCRIPTOR_FILE), encodeNsDescriptor(next), 0o600);
    this.desc = next;
  }

  private changeMode(mode: NsMode): void {
    if (this.ctx.opts.mode !== undefined) throw new ZdbEngineError('This server instance is configured to use a single runtime mode');
    if (!this.state.changeMode(mode)) throw new ZdbEngineError('Cannot change mode of used namespace');
  }

  // ---- reads ----------------------------------------------------------

  get(key: Buffer): { payload: Buffer; meta: EntryMeta } | undefined {
    const rec = this.state.find(key);
    if (!rec) return undefined;
    const payload = this.readPayload(rec.dataId, rec.offset, rec.keyLength, rec.length);
    if (this.failure() && !intact(payload, rec)) return undefined;
    return { payload, meta: this.toMeta(key, rec) };
  }

  exists(key: Buffer): boolean {
    return this.liveRecord(key) !== undefined;
  }

  meta(key: Buffer): EntryMeta | undefined {
    const rec = this.liveRecord(key);
    return rec ? this.toMeta(key, rec) : undefined;
  }

  /**
   * The key's record; after a write error only when its payload is on disk
   * intact: the key map may still count entries whose write was lost.
   */
  private liveRecord(key: Buffer): KeyRecord | undefined {
    const rec = this.state.find(key);
    if (!rec || !this.failure()) return rec;
    return intact(this.readPayload(rec.dataId, rec.offset, rec.keyLength, rec.length), rec) ? rec : undefined;
  }

  /** The write error that made this namespace read-only (until RELOAD reopens it from disk). */
  failure(): Error | undefined {
    return this.dataFiles.failure ?? this.indexFiles.failure;
  }

  /** CRC of the payload as stored in the data file vs the data entry header's crc. */
  check(key: Buffer): boolean | undefined {
    const rec = this.state.find(key);
    if (!rec) return undefined;
    const head = this.dataFiles.read(rec.dataId, rec.offset, DATA_ENTRY_SIZE);
    if (head.length < DATA_ENTRY_SIZE) return false;
    const length = head.readUInt32LE(1);
    const payload = this.readPayload(rec.dataId, rec.offset, head[0], length);
    return payload.length === length && crc32c(payload) === head.readUInt32LE(9);
  }

  private readPayload(dataId: number, offset: number, keyLength: number, length: number): Buffer {
    return this.dataFiles.read(dataId, offset + DATA_ENTRY_SIZE + keyLength, length);
  }

  private toMeta(key: Buffer, rec: KeyRecord): EntryMeta {
    return { key, size: rec.length, timestamp: rec.timestamp, crc: rec.crc, dataId: rec.dataId, offset: rec.offset };
  }

  scan(cursor: Buffer | undefined, count: number, reverse: boolean): ScanPage | undefined {
    const t = this.state.totals;
    const tail = t.indexPrevious >= INDEX_HEADER_SIZE ? { fileId: t.indexPreviousFile, offset: t.indexPrevious } : undefined;
    const walker = new IndexWalker(this.indexFiles, this.fileId, tail);
    let pos: { fileId: number; offset: number } | undefined;
    if (cursor !== undefined) {
      const c = decodeCursor(cursor);
      if (!c) throw new ZdbEngineError('Invalid key format');
      const e = walker.entryAt(c.fileId, c.indexOffset);
      if (!e || e.key.length !== c.keyLength || e.length !== c.length || e.crc !== c.crc) {
        throw new ZdbEngineError('Invalid key format');
      }
      pos = { fileId: c.fileId, offset: c.indexOffset };
    }
    const items: EntryMeta[] = [];
    let last: { fileId: number; offset: number; entry: IndexEntry } | undefined;
    for (const found of reverse ? walker.backward(pos) : walker.forward(pos)) {
      items.push({
        key: found.entry.key,
        size: found.entry.length,
        timestamp: found.entry.timestamp,
        crc: found.entry.crc,
        dataId: this.resolveDataId(found.entry, found.fileId),
        offset: found.entry.offset,
      });
      last = found;
      if (items.length >= Math.max(1, count)) break;
    }
    if (!last) return undefined;
    return {
      items,
      next: encodeCursor({
        keyLength: last.entry.key.length,
        fileId: last.fileId,
        length: last.entry.length,
        indexOffset: last.offset,
        crc: last.entry.crc,
      }),
    };
  }

  keyCursor(key: Buffer): Buffer | undefined {
    const rec = this.state.find(key);
    if (!rec) return undefined;
    return encodeCursor({ keyLength: rec.keyLength, fileId: rec.idxId, length: rec.length, indexOffset: rec.idxOffset, crc: rec.crc });
  }

  /**
   * HISTORY: without `cursor`, the live entry of `key`; with one, the older
   * entry it names. undefined when the key is missing (reference: "Key not
   * found"); ZdbEngineError with the reference texts for a bad cursor.
   */
  history(key: Buffer, cursor?: Buffer): HistoryItem | undefined {
    let at: { indexId: number; offset: number };
    if (cursor === undefined) {
      const rec = this.state.find(key);
      if (!rec) return undefined;
      at = { indexId: rec.idxId, offset: rec.idxOffset };
    } else {
      const h = decodeHistoryKey(cursor);
      if (!h) throw new ZdbEngineError('Invalid arguments');
      if (h.indexId === 0 && h.offset === 0) throw new ZdbEngineError('No more history');
      at = h;
    }
    if (at.indexId > this.fileId || !this.indexFiles.exists(at.indexId)) throw new ZdbEngineError('Invalid arguments (index query)');
    const raw = this.indexFiles.read(at.indexId, at.offset, INDEX_ENTRY_SIZE + key.length);
    const entry = raw.length === INDEX_ENTRY_SIZE + key.length ? readIndexEntry(raw, 0) : undefined;
    if (!entry) throw new ZdbEngineError('Invalid arguments (index query)');
    if (!entry.key.equals(key)) throw new ZdbEngineError('Invalid arguments (invalid key)');
    const payload = this.readPayload(this.resolveDataId(entry, at.indexId), entry.offset, key.length, entry.length);
    return { next: encodeHistoryKey(entry.parentId, entry.parentOffset), timestamp: entry.timestamp, payload };
  }

  /**
   * 0-db writes dataid 0 for inserted keys (the data file is then the index
   * file's id); a sequential deleted copy with id 0 may point into d0 instead.
   */
  private resolveDataId(entry: IndexEntry, indexFileId: number): number {
    if (entry.dataId !== 0 || indexFileId === 0) return entry.dataId;
    const head = this.dataFiles.exists(indexFileId) ? this.dataFiles.read(indexFileId, entry.offset, DATA_ENTRY_SIZE) : Buffer.alloc(0);
    const matches = head.length === DATA_ENTRY_SIZE && head[0] === entry.key.length && head.readUInt32LE(1) === entry.length && head.readUInt32LE(9) === entry.crc;
    return matches ? indexFileId : 0;
  }

  stats(): NsStats {
    // every live key, sequential ones included (all 8 bytes), as the reference counts its memory entries
    const keyBytes = this.state.mode === 'user' ? this.state.totalKeyLength : this.state.size * 8;
    const indexSize = this.state.size * REFERENCE_MEMORY_ENTRY + keyBytes;
    const t = this.state.totals;
    return {
      entries: this.state.size,
      dataSize: t.liveBytes,
      indexSize,
      nextId: t.nextEntry,
      dataFileId: this.fileId,
      indexFileId: this.fileId,
      dataOffset: t.dataEnd,
      indexOffset: t.indexEnd,
      dataPath: this.dataFiles.dir,
      indexPath: this.indexFiles.dir,
      dataActive: this.dataFiles.path(this.fileId),
      indexActive: this.indexFiles.path(this.fileId),
      dataIo: { ...this.dataFiles.io.own },
      indexIo: { ...this.indexFiles.io.own },
    };
  }

  dirtyIndexFiles(): number[] {
    return this.state.dirtyIndexFiles();
  }

  resetDirtyIndexFiles(): void {
    this.state.resetDirtyIndexFiles();
  }

  /**
   * DATA RAW, read as 0-db reads it: the entry header at `offset`, then its
   * key and payload, with the reference's answers when that fails (its
   * texts, as ZdbEngineError): no such file "Invalid Request", at or past
   * the end "EOF", a short read, an oversized length or a deleted entry
   * "Unexpected Internal Error", an empty payload "Invalid Request".
   */
  rawData(fileId: number, offset: number): RawDataEntry {
    if (fileId > this.fileId || !this.dataFiles.exists(fileId)) throw new ZdbEngineError('Invalid Request');
    const size = fileId === this.fileId ? this.state.totals.dataEnd : this.dataFiles.size(fileId);
    if (offset >= size) throw new ZdbEngineError('EOF');
    const unexpected = new ZdbEngineError('Unexpected Internal Error');
    // a negative offset leaves the reference reading where its file position was: never an entry
    if (offset < 0) throw unexpected;
    const head = this.dataFiles.read(fileId, offset, DATA_ENTRY_SIZE);
    const h = head.length === DATA_ENTRY_SIZE ? readDataEntryHeader(head) : undefined;
    if (!h || h.length > MAX_PAYLOAD) throw unexpected;
    const key = this.dataFiles.read(fileId, offset + DATA_ENTRY_SIZE, h.keyLength);
    if (key.length !== h.keyLength || (h.flags & DATA_ENTRY_DELETED) !== 0) throw unexpected;
    const payload = this.dataFiles.read(fileId, offset + DATA_ENTRY_SIZE + h.keyLength, h.length);
    if (payload.length !== h.length) throw unexpected;
    if (h.length === 0) throw new ZdbEngineError('Invalid Request');
    return { key, previous: h.previous, crc: h.crc, flags: h.flags, timestamp: h.timestamp, payload };
  }

  // ---- writes ---------------------------------------------------------

  private assertWritable(): void {
    if (this.closed) throw new ZdbEngineError('Namespace is closed');
    if (this.frozen) throw new ZdbEngineError('Namespace is temporarily frozen');
    if (this.locked) throw new ZdbEngineError('Namespace is temporarily locked');
    const failure = this.failure();
    if (failure) throw new ZdbEngineError(`Namespace is read-only after a write error (${failure.message}): free disk space, then RELOAD ${this.name}`);
  }

  /** Runs a write; a file error leaves the namespace read-only (FileSet.failure) and is reported as such. */
  private writing<T>(run: () => T): T {
    try {
      return run();
    } catch (err) {
      if (err instanceof ZdbEngineError || !this.failure()) throw err;
      throw new ZdbWriteFailure(`Write failed (${(err as Error).message}): namespace ${this.name} is read-only until RELOAD`);
    }
  }

  set(key: Buffer, payload: Buffer, opts?: { timestamp?: number }): { key: Buffer; changed: boolean } {
    return this.writing(() => this.setNow(key, payload, opts));
  }

  private setNow(key: Buffer, payload: Buffer, opts?: { timestamp?: number }): { key: Buffer; changed: boolean } {
    this.assertWritable();
    if (key.length > 255) throw new ZdbEngineError('Key too large');
    const seq = this.state.mode === 'seq';
    if (!seq && key.length === 0) throw new ZdbEngineError('Invalid argument, key needed');
    const existing = key.length > 0 ? this.state.find(key) : undefined;
    if (seq && key.length > 0 && !existing) throw new ZdbEngineError('Invalid key, only update authorized');
    if (existing && this.desc.worm) throw new ZdbEngineError('Namespace is in worm mode');
    if (overLimit(this.desc.maxsize, this.state.totals.liveBytes, payload.length, existing ? existing.length : 0)) {
      throw new ZdbEngineError('No space left on this namespace');
    }
    const now = this.ctx.now();
    this.maybeJump(payload.length, now);
    const crc = crc32c(payload);
    if (existing && existing.crc === crc) return { key, changed: false };
    const timestamp = opts?.timestamp ?? now;
    const storedKey = seq && !existing ? seqKey(this.state.totals.nextEntry) : key;
    // a sequential insert takes an id no key holds yet
    this.state.remember(storedKey, storedKey === key ? existing : undefined);
    const offset = this.state.appendData(storedKey, payload, 0, crc, timestamp);
    this.state.commitSet(storedKey, existing, this.fileId, offset, payload.length, crc, timestamp);
    this.ctx.written();
    return { key: storedKey, changed: true };
  }

  del(key: Buffer): boolean {
    return this.writing(() => this.delNow(key));
  }

  private delNow(key: Buffer): boolean {
    this.assertWritable();
    if (this.desc.worm) throw new ZdbEngineError('Namespace is in worm mode');
    const rec = this.state.find(key);
    if (!rec) return false;
    this.state.remember(key, rec);
    this.state.appendData(key, Buffer.alloc(0), DATA_ENTRY_DELETED, 0, this.ctx.now());
    this.state.commitDelete(key, rec);
    this.ctx.written();
    return true;
  }

  /** FLUSH: every live key deleted the way DEL does it (data stays append-only). */
  flush(): void {
    this.writing(() => {
      this.assertWritable();
      for (const [key, rec] of this.state.entries()) {
        this.state.remember(key, rec);
        this.state.appendData(key, Buffer.alloc(0), DATA_ENTRY_DELETED, 0, this.ctx.now());
        this.state.commitDelete(key, rec);
      }
      this.ctx.written();
    });
  }

  /** The jump rule of the reference: before a write, if it would pass datasize (or --rotate expired). */
  private maybeJump(payloadLength: number, now: number): void {
    const rotate = this.ctx.opts.rotateSeconds;
    const dataEnd = this.state.totals.dataEnd;
    if (dataEnd + payloadLength > this.ctx.opts.datasize) this.jump(now);
    else if (rotate && rotate > 0 && now - this.lastJump >= rotate && dataEnd > DATA_HEADER_SIZE) this.jump(now);
  }

  /** Moves both files to the next id (header-only new files). */
  jump(now = this.ctx.now()): void {
    const oldIndex = this.indexFiles.path(this.fileId);
    const oldData = this.dataFiles.path(this.fileId);
    const dirty = this.dirtyIndexFiles().join(' ');
    this.state.openFilePair(this.fileId + 1, now);
    this.lastJump = now;
    this.ctx.hook('jump-index', oldIndex, this.indexFiles.path(this.fileId), dirty);
    this.ctx.hook('jump-data', oldData, this.dataFiles.path(this.fileId));
  }

  /** Writes batched appends of this namespace (see EngineOptions.batchWrites). */
  flushWrites(): void {
    // both sets report a failure (they fail together): take both reports now
    // so the next flush does not fail again for writes that were not lost
    let failure: unknown;
    for (const files of [this.dataFiles, this.indexFiles]) {
      try {
        files.flush();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
  }

  closeFiles(): void {
    this.closed = true;
    this.dataFiles.close();
    this.indexFiles.close();
  }
}

/**
 * 0-db's size check: with a limit, refuse when live bytes plus the new value
 * pass limit + the value replaced, summed as its size_t (which wraps).
 */
export function overLimit(maxsize: bigint, live: number, adding: number, replaced: number): boolean {
  if (maxsize === 0n) return false;
  return BigInt(live + adding) > BigInt.asUintN(64, maxsize + BigInt(replaced));
}

function intact(payload: Buffer, rec: KeyRecord): boolean {
  return payload.length === rec.length && crc32c(payload) === rec.crc;
}
