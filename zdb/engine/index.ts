// zdb storage engine: 0-db v2 compatible files, one in-memory key map per
// namespace. The protocol server (zdb/server) codes against this surface.
//
// Durability contract: every write method is synchronous and has written
// both files when it returns. With `sync: true` a write is durable once
// `engine.sync()` resolves; the server awaits it before acknowledging and
// may share one sync() among all writes of a tick (group commit). Without
// `sync`, `synctime` bounds how long written data stays unsynced.
import { ZdbEngine } from './engine.ts';
import type { Engine, EngineOptions } from './types.ts';

export type { Engine, EngineOptions, EntryMeta, HistoryItem, Namespace, NsMode, NsSettings, NsStats, RawDataEntry, ScanPage } from './types.ts';
export { ZdbEngineError, ZdbWriteFailure } from './errors.ts';
export type { IoCounters } from './io-stats.ts';
export { DEFAULT_DATASIZE, DEFAULT_NAMESPACE, MAX_DATASIZE, MIN_DATASIZE } from './engine.ts';
export { overLimit } from './namespace.ts';

/**
 * Opens (creating 'default' if missing) every namespace under the dirs.
 * Throws ZdbEngineError for the legacy zdb-index-00000 layout, a dataset in
 * another mode than `opts.mode`, and files it cannot repair.
 */
export function openEngine(opts: EngineOptions): Engine {
  return new ZdbEngine(opts);
}
