// The engine contract the protocol server codes against (see zdb/engine/index.ts).
import type { IoCounters } from './io-stats.ts';

export type NsMode = 'user' | 'seq';

export interface EngineOptions {
  dataDir: string;
  indexDir: string;
  /** --mode; undefined = mixed: each namespace keeps the mode of its index headers. */
  mode?: NsMode;
  /** --datasize in bytes (default 256 MiB, min 0.5 MiB). */
  datasize: number;
  /** --sync: writes are durable once `Engine.sync()` resolves (group commit; see sync.ts). */
  sync: boolean;
  /** --synctime seconds: dirty files are fsync'd at most this long after a write. */
  synctime?: number;
  /** --rotate seconds: jump to the next data/index file this long after the last jump. */
  rotateSeconds?: number;
  /** Unix seconds; tests pass a fake clock. */
  now?: () => number;
  /** Called as hooks(event, ...args); the server prepends the zdb id when it runs the hook. */
  hooks?: (event: string, ...args: string[]) => void;
  /**
   * Batch appends in memory until `Engine.flush()` (or sync(), a read of the
   * region, or the end of the event-loop turn at the latest): one write per file per batch
   * instead of one per entry. A server using it must call flush() before it
   * sends the acknowledgements of a batch of writes (default false:
   * write-through, every call has written its entries when it returns).
   */
  batchWrites?: boolean;
  /**
   * A data file below the newest one is missing while opening a namespace:
   * asks for it back (the --hook's blocking missing-data event) and says
   * whether the asking succeeded (the hook exited 0).
   */
  missingData?: (file: string) => boolean;
  /** One line per repair done while opening (torn tails cut, index rebuilt). */
  log?: (line: string) => void;
}

export interface EntryMeta {
  key: Buffer;
  size: number;
  timestamp: number;
  crc: number;
  dataId: number;
  offset: number;
}

export interface NsSettings {
  password?: string;
  public: boolean;
  worm: boolean;
  /** 0 = unlimited; a u64 as 0-db keeps it */
  maxsize: bigint;
  locked: boolean;
  frozen: boolean;
  mode: NsMode;
}

export interface NsStats {
  entries: number;
  /** live payload bytes, as the reference counts */
  dataSize: number;
  /** the reference's in-memory index size (entries * (sizeof index entry + key)) */
  indexSize: number;
  /** next_internal_id: sequential id of the next SET "" (seq) / count of inserted keys (user) */
  nextId: number;
  /** current data (and index) file id */
  dataFileId: number;
  indexFileId: number;
  /** bytes in the current data file (its append offset) */
  dataOffset: number;
  /** bytes in the current index file */
  indexOffset: number;
  dataPath: string;
  indexPath: string;
  /** the current data and index files (NSINFO data_active, index_active) */
  dataActive: string;
  indexActive: string;
  /** disk I/O of this namespace's data and index files since it was opened (NSINFO stats_*) */
  dataIo: IoCounters;
  indexIo: IoCounters;
}

export interface ScanPage {
  /** opaque cursor bytes as the reference encodes them (the last item's index entry) */
  next?: Buffer;
  items: EntryMeta[];
}

export interface HistoryItem {
  next?: Buffer;
  timestamp: number;
  payload: Buffer;
}

/** A data entry as stored (DATA RAW). */
export interface RawDataEntry {
  key: Buffer;
  previous: number;
  crc: number;
  flags: number;
  timestamp: number;
  payload: Buffer;
}

export interface Namespace {
  readonly name: string;
  settings(): NsSettings;
  update(changes: Partial<NsSettings>): void;
  get(key: Buffer): { payload: Buffer; meta: EntryMeta } | undefined;
  /** Keeps no reference to `key` or `payload` (copies what it stores); the returned key is valid until the caller's buffers change. */
  set(key: Buffer, payload: Buffer, opts?: { timestamp?: number }): { key: Buffer; changed: boolean };
  del(key: Buffer): boolean;
  exists(key: Buffer): boolean;
  check(key: Buffer): boolean | undefined;
  meta(key: Buffer): EntryMeta | undefined;
  scan(cursor: Buffer | undefined, count: number, reverse: boolean): ScanPage | undefined;
  keyCursor(key: Buffer): Buffer | undefined;
  history(key: Buffer, cursor?: Buffer): HistoryItem | undefined;
  stats(): NsStats;
  flush(): void;
  /** INDEX DIRTY: ids of the index files written since the namespace was opened or the last reset, ascending. */
  dirtyIndexFiles(): number[];
  resetDirtyIndexFiles(): void;
  /** DATA RAW: the data entry at (fileId, offset); ZdbEngineError when no whole entry lies there. */
  rawData(fileId: number, offset: number): RawDataEntry;
}

export interface Engine {
  namespaces(): string[];
  get(name: string): Namespace | undefined;
  create(name: string): Namespace;
  delete(name: string): void;
  reload(name: string): Namespace;
  sync(): Promise<void>;
  /** Writes batched appends now (no fsync); a no-op without batchWrites. */
  flush(): void;
  /** disk I/O of every namespace since start, deleted ones included (INFO) */
  ioTotals(): { index: IoCounters; data: IoCounters };
  close(): Promise<void>;
}
