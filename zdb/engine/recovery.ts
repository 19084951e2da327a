// Opening a namespace: load every index file into the key map, then make the
// files consistent with each other after a crash.
//  - A torn tail (an entry cut by a crash) of the last index or data file is
//    cut off and the file truncated, so later appends start on a boundary.
//  - An index entry whose data is missing is cut the same way.
//  - An index file truncated before its end (or missing) is rebuilt from the
//    data files: every data entry after the last one the index knows is
//    replayed through the normal SET/DEL index paths.
//  - What cannot be repaired (bad magic/version, a torn entry in the middle of
//    the data) is refused with a ZdbEngineError naming the file.
import {
  crc32c,
  DATA_ENTRY_DELETED,
  DATA_ENTRY_SIZE,
  DATA_HEADER_SIZE,
  decodeDataHeader,
  decodeIndexHeader,
  encodeDataHeader,
  encodeIndexHeader,
  INDEX_ENTRY_DELETED,
  INDEX_ENTRY_SIZE,
  INDEX_HEADER_SIZE,
  MODE_SEQ,
  MODE_USER,
  readDataEntryHeader,
  readIndexEntry,
} from '../format/index.ts';
import type { DataEntryHeader, IndexEntry } from '../format/index.ts';
import { ZdbEngineError } from './errors.ts';
import type { ZdbNamespace } from './namespace.ts';
import { keyString, seqId } from './records.ts';

interface Position {
  fileId: number;
  offset: number;
}

function before(a: Position, b: Position): boolean {
  return a.fileId < b.fileId || (a.fileId === b.fileId && a.offset < b.offset);
}

export function loadNamespace(ns: ZdbNamespace): void {
  const now = ns.ctx.now();
  const log = (line: string): void => {
    ns.recoveryLog.push(line);
    ns.ctx.log(`namespace ${ns.name}: ${line}`);
  };
  const refuse = (why: string): ZdbEngineError =>
    new ZdbEngineError(`namespace ${ns.name}: ${why}; refusing to open it (restore the files or move the namespace away)`);

  const nIdx = ns.indexFiles.count();
  const nData = ns.dataFiles.count();
  if (nIdx === 0 && nData === 0) {
    ns.mode = ns.ctx.opts.mode ?? 'user';
    ns.openFilePair(0, now);
    return;
  }
  if (nData === 0) {
    // a header-only index (zos creates these) gets its first data file, as the reference does
    for (let f = 0; f < nIdx; f++) {
      if (ns.indexFiles.size(f) > INDEX_HEADER_SIZE) throw refuse(`index files hold entries but the data file ${ns.dataFiles.path(0)} is missing`);
    }
    ns.dataFiles.create(0, encodeDataHeader({ created: 0, opened: 0, fileId: 0 }));
    return loadNamespace(ns);
  }

  const dataSizes: number[] = [];
  for (let f = 0; f < nData; f++) {
    const size = ns.dataFiles.size(f);
    try {
      decodeDataHeader(ns.dataFiles.read(f, 0, DATA_HEADER_SIZE));
    } catch (err) {
      throw refuse(`${ns.dataFiles.path(f)}: ${(err as Error).message}`);
    }
    dataSizes.push(size);
  }

  // index files past the last data file can only be a crash inside a jump
  for (let f = nIdx - 1; f >= nData; f--) {
    if (ns.indexFiles.size(f) > INDEX_HEADER_SIZE) throw refuse(`${ns.indexFiles.path(f)} has entries but ${ns.dataFiles.path(f)} is missing`);
    ns.indexFiles.remove(f);
    log(`removed ${ns.indexFiles.path(f)} (no data file: crash during a file jump)`);
  }
  const indexCount = Math.min(nIdx, nData);

  const images: Buffer[] = [];
  let modeByte: number | undefined;
  for (let f = 0; f < indexCount; f++) {
    const buf = ns.indexFiles.readAll(f);
    if (buf.length < INDEX_HEADER_SIZE) {
      log(`${ns.indexFiles.path(f)} is truncated inside its header (${buf.length} bytes): rebuilding the index from the data files`);
      break;
    }
    let header;
    try {
      header = decodeIndexHeader(buf);
    } catch (err) {
      throw refuse(`${ns.indexFiles.path(f)}: ${(err as Error).message}`);
    }
    if (modeByte === undefined) modeByte = header.mode;
    images.push(buf);
  }
  if (modeByte !== undefined && modeByte !== MODE_USER && modeByte !== MODE_SEQ) {
    throw refuse(`${ns.indexFiles.path(0)}: unsupported index mode ${modeByte} (only user and sequential are supported)`);
  }
  const fileMode = modeByte === undefined ? undefined : modeByte === MODE_SEQ ? 'seq' : 'user';
  const running = ns.ctx.opts.mode;
  if (running !== undefined && fileMode !== undefined && running !== fileMode) {
    throw refuse(
      `index created in ${fileMode === 'seq' ? 'sequential' : 'user'} mode but the server runs with --mode ${running}` +
        ' (stopping here to ensure no data loss)',
    );
  }
  ns.mode = fileMode ?? running ?? 'user';

  let coverage: Position | undefined;
  let loaded = 0;
  for (let f = 0; f < images.length; f++) {
    const buf = images[f];
    let at = INDEX_HEADER_SIZE;
    ns.seqFirst[f] = ns.nextEntry;
    let cutAt: number | undefined;
    let why = '';
    while (at < buf.length) {
      const e = readIndexEntry(buf, at);
      if (!e) {
        cutAt = at;
        why = `torn entry at offset ${at} (${buf.length - at} of at least ${INDEX_ENTRY_SIZE} bytes)`;
        break;
      }
      // 0-db v2.0.x writes dataid 0 for inserted keys and derives the data file
      // from the index file (they move in lockstep); updates carry the real id.
      // Only a sequential deleted copy in a later file can leave that unsure.
      const deleted = (e.flags & INDEX_ENTRY_DELETED) !== 0;
      const certain = e.dataId !== 0 || f === 0 || !deleted || ns.mode === 'user';
      if (e.dataId === 0) e.dataId = f;
      const dataEnd = e.offset + DATA_ENTRY_SIZE + e.key.length + e.length;
      if (certain && (e.dataId >= nData || e.offset < DATA_HEADER_SIZE || dataEnd > dataSizes[e.dataId])) {
        cutAt = at;
        why = `entry at offset ${at} points past the end of ${ns.dataFiles.path(e.dataId)}`;
        break;
      }
      applyLoadedEntry(ns, f, at, e);
      const pos = { fileId: e.dataId, offset: e.offset };
      if (certain && (!coverage || before(coverage, pos))) coverage = pos;
      at += INDEX_ENTRY_SIZE + e.key.length;
    }
    loaded = f + 1;
    ns.fileId = f;
    ns.indexEnd = cutAt ?? buf.length;
    if (cutAt !== undefined) {
      ns.indexFiles.truncate(f, cutAt);
      log(`${ns.indexFiles.path(f)}: ${why}: truncated to ${cutAt} bytes`);
      break;
    }
  }
  for (let f = loaded; f < indexCount; f++) {
    ns.indexFiles.remove(f);
    log(`removed ${ns.indexFiles.path(f)}: it follows a truncated index file and is rebuilt from the data files`);
  }
  if (loaded === 0) {
    // no usable index at all: start a fresh i0 and replay every data entry
    ns.indexFiles.create(0, encodeIndexHeader({ created: now, opened: now, fileId: 0, mode: ns.modeByte() }));
    ns.fileId = 0;
    ns.indexEnd = INDEX_HEADER_SIZE;
    ns.seqFirst[0] = 0;
  }

  replayDataTail(ns, coverage, dataSizes, log, refuse);

  // the current pair is the last data file; create index files the replay did not need
  while (ns.fileId < nData - 1) startIndexFile(ns, ns.fileId + 1, now);
  ns.dataEnd = dataSizes[nData - 1];
  ns.fileId = nData - 1;

  // like the reference, every loaded index header records this opening
  for (let f = 0; f < nData; f++) {
    const head = decodeIndexHeader(ns.indexFiles.read(f, 0, INDEX_HEADER_SIZE));
    ns.indexFiles.write(f, encodeIndexHeader({ ...head, opened: now }), INDEX_HEADER_SIZE, 0);
  }
}

function applyLoadedEntry(ns: ZdbNamespace, fileId: number, at: number, e: IndexEntry): void {
  const ks = keyString(e.key);
  const deleted = (e.flags & INDEX_ENTRY_DELETED) !== 0;
  ns.indexPrevious = at;
  ns.indexPreviousFile = fileId;
  const rec = {
    keyLength: e.key.length, dataId: e.dataId, offset: e.offset, length: e.length, crc: e.crc, timestamp: e.timestamp,
    idxId: fileId, idxOffset: at, idxPrevious: e.previous, parentId: e.parentId, parentOffset: e.parentOffset,
  };
  if (ns.mode === 'seq') {
    // ids are positions: every entry (deleted copies included) takes one
    ns.nextEntry++;
    if (!deleted) {
      const old = ns.keys.get(ks);
      if (old) ns.liveBytes -= old.length;
      ns.keys.set(ks, rec);
      ns.liveBytes += e.length;
    }
    return;
  }
  // user mode replays like the reference: insert or update, then delete if flagged
  const old = ns.keys.get(ks);
  if (old) ns.liveBytes -= old.length;
  else ns.nextEntry++;
  if (deleted) {
    ns.keys.delete(ks);
    return;
  }
  ns.keys.set(ks, rec);
  ns.liveBytes += e.length;
}

function startIndexFile(ns: ZdbNamespace, fileId: number, now: number): void {
  if (!ns.indexFiles.exists(fileId)) {
    ns.indexFiles.create(fileId, encodeIndexHeader({ created: now, opened: now, fileId, mode: ns.modeByte() }));
  }
  ns.fileId = fileId;
  ns.indexEnd = ns.indexFiles.size(fileId);
  ns.seqFirst[fileId] = ns.nextEntry;
}

/**
 * Walks the data entries after `coverage` (the last data entry any index
 * entry points at): cuts a torn tail of the last data file and replays every
 * complete entry into the index. Also finds the data `previous` offset.
 */
function replayDataTail(
  ns: ZdbNamespace,
  coverage: Position | undefined,
  dataSizes: number[],
  log: (line: string) => void,
  refuse: (why: string) => ZdbEngineError,
): void {
  const nData = dataSizes.length;
  const lastFile = nData - 1;
  let fileId = coverage ? coverage.fileId : 0;
  let offset = DATA_HEADER_SIZE;
  let skipFirst = false;
  if (coverage) {
    offset = coverage.offset;
    skipFirst = true;
  }
  let replayed = 0;
  for (; fileId < nData; fileId++, offset = DATA_HEADER_SIZE) {
    const size = dataSizes[fileId];
    while (offset < size) {
      const head = ns.dataFiles.read(fileId, offset, DATA_ENTRY_SIZE + 255);
      const h = readDataEntryHeader(head, 0);
      const end = h ? offset + DATA_ENTRY_SIZE + h.keyLength + h.length : Infinity;
      let torn = !h || end > size || head.length < DATA_ENTRY_SIZE + h.keyLength;
      const isTail = fileId === lastFile;
      if (!torn && h && !skipFirst && (h.flags & DATA_ENTRY_DELETED) === 0) {
        // an entry the index never saw: check it is whole before serving it
        const payload = ns.dataFiles.read(fileId, offset + DATA_ENTRY_SIZE + h.keyLength, h.length);
        if (crc32c(payload) !== h.crc) torn = true;
      }
      if (torn) {
        if (!isTail) throw refuse(`${ns.dataFiles.path(fileId)}: damaged entry at offset ${offset} before the last data file`);
        ns.dataFiles.truncate(fileId, offset);
        dataSizes[fileId] = offset;
        log(`${ns.dataFiles.path(fileId)}: torn entry at offset ${offset}: truncated to ${offset} bytes`);
        break;
      }
      const key = Buffer.from(head.subarray(DATA_ENTRY_SIZE, DATA_ENTRY_SIZE + (h as DataEntryHeader).keyLength));
      if (!skipFirst && replayEntry(ns, fileId, offset, h as DataEntryHeader, key, log)) replayed++;
      skipFirst = false;
      ns.dataPrevious = offset;
      offset = end;
    }
  }
  if (replayed > 0) log(`replayed ${replayed} data entries the index did not hold`);
}

/** Applies one data entry to the index; false when it changed nothing. */
function replayEntry(ns: ZdbNamespace, fileId: number, offset: number, h: DataEntryHeader, key: Buffer, log: (line: string) => void): boolean {
  while (ns.fileId < fileId) startIndexFile(ns, ns.fileId + 1, ns.ctx.now());
  const ks = keyString(key);
  const rec = ns.keys.get(ks);
  if ((h.flags & DATA_ENTRY_DELETED) !== 0) {
    // a DEL's marker: applied unless the index already dropped the key
    if (!rec || !before({ fileId: rec.dataId, offset: rec.offset }, { fileId, offset })) return false;
    ns.commitDelete(key, rec);
    return true;
  }
  if (ns.mode === 'seq' && !rec && seqId(key) !== ns.nextEntry) {
    log(`data entry at ${ns.dataFiles.path(fileId)}:${offset} has sequential key ${seqId(key)} which cannot be placed (next id ${ns.nextEntry}): skipped`);
    return false;
  }
  ns.commitSet(key, rec, fileId, offset, h.length, h.crc, h.timestamp);
  return true;
}
