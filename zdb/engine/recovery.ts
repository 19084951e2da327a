// Opening a namespace: load every index file into a key map, then make the
// files consistent with each other after a crash. The result is a value, the
// state the namespace starts from (live-state.ts), and the repairs done.
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
import type { DataEntryHeader } from '../format/index.ts';
import { ZdbEngineError } from './errors.ts';
import type { FileSet } from './file-set.ts';
import { LiveState } from './live-state.ts';
import { seqId } from './records.ts';
import type { EngineOptions, NsMode } from './types.ts';

interface Position {
  fileId: number;
  offset: number;
}

function before(a: Position, b: Position): boolean {
  return a.fileId < b.fileId || (a.fileId === b.fileId && a.offset < b.offset);
}

/** What opening needs from the engine. */
export interface RecoveryContext {
  opts: EngineOptions;
  now(): number;
  log(line: string): void;
}

/** The state a namespace starts from, and what opening had to repair (torn tails cut, entries replayed). */
export interface Recovered {
  state: LiveState;
  log: string[];
}

/** One opening: its files, the repairs done so far, and how to refuse. */
interface Opening {
  ctx: RecoveryContext;
  files: { dataFiles: FileSet; indexFiles: FileSet };
  now: number;
  log(line: string): void;
  refuse(why: string): ZdbEngineError;
}

/** Reads namespace `name`'s files (repairing what a crash left) into the state it starts from. */
export function recoverNamespace(ctx: RecoveryContext, name: string, files: { dataFiles: FileSet; indexFiles: FileSet }): Recovered {
  const lines: string[] = [];
  const o: Opening = {
    ctx,
    files,
    now: ctx.now(),
    log: (line) => {
      lines.push(line);
      ctx.log(`namespace ${name}: ${line}`);
    },
    refuse: (why) => new ZdbEngineError(`namespace ${name}: ${why}; refusing to open it (restore the files or move the namespace away)`),
  };
  // once per opening: recover() calls itself after creating a first data file
  askMissingData(o);
  return { state: recover(o), log: lines };
}

function recover(o: Opening): LiveState {
  const { dataFiles, indexFiles } = o.files;
  const nIdx = indexFiles.count();
  const nData = dataFiles.count();
  if (nIdx === 0 && nData === 0) {
    const state = new LiveState(o.files, o.ctx.opts.mode ?? 'user', o.ctx.opts);
    state.openFilePair(0, o.now);
    return state;
  }
  if (nData === 0) {
    // a header-only index (zos creates these) gets its first data file, as the reference does
    for (let f = 0; f < nIdx; f++) {
      if (indexFiles.size(f) > INDEX_HEADER_SIZE) throw o.refuse(`index files hold entries but the data file ${dataFiles.path(0)} is missing`);
    }
    dataFiles.create(0, encodeDataHeader({ created: 0, opened: 0, fileId: 0 }));
    return recover(o);
  }
  const dataSizes = readDataSizes(o, nData);
  // index files past the last data file can only be a crash inside a jump
  for (let f = nIdx - 1; f >= nData; f--) {
    if (indexFiles.size(f) > INDEX_HEADER_SIZE) throw o.refuse(`${indexFiles.path(f)} has entries but ${dataFiles.path(f)} is missing`);
    indexFiles.remove(f);
    o.log(`removed ${indexFiles.path(f)} (no data file: crash during a file jump)`);
  }
  const indexCount = Math.min(nIdx, nData);
  const { images, mode } = readIndexImages(o, indexCount);
  const state = new LiveState(o.files, mode, o.ctx.opts);
  const { loaded, coverage } = loadIndexImages(o, state, images, dataSizes);
  for (let f = loaded; f < indexCount; f++) {
    indexFiles.remove(f);
    o.log(`removed ${indexFiles.path(f)}: it follows a truncated index file and is rebuilt from the data files`);
  }
  if (loaded === 0) {
    // no usable index at all: start a fresh i0 and replay every data entry
    indexFiles.create(0, encodeIndexHeader({ created: o.now, opened: o.now, fileId: 0, mode: state.modeByte() }));
    state.resumeIndex(0, INDEX_HEADER_SIZE);
  }

  replayDataTail(o, state, coverage, dataSizes);

  // the current pair is the last data file; create index files the replay did not need
  while (state.fileId < nData - 1) state.startIndexFile(state.fileId + 1, o.now);
  state.resumeData(nData - 1, dataSizes[nData - 1]);

  // like the reference, every loaded index header records this opening
  for (let f = 0; f < nData; f++) {
    const head = decodeIndexHeader(indexFiles.read(f, 0, INDEX_HEADER_SIZE));
    indexFiles.write(f, encodeIndexHeader({ ...head, opened: o.now }), INDEX_HEADER_SIZE, 0);
  }
  return state;
}

/**
 * Data files missing below the newest one (moved to other storage) are asked
 * back through the missing-data hook, as 0-db asks when it needs one. This
 * opening reads every data file's header, so it asks at once rather than on
 * the first read; a file still missing afterwards is refused below as before.
 */
function askMissingData(o: Opening): void {
  const ask = o.ctx.opts.missingData;
  if (!ask) return;
  const { dataFiles } = o.files;
  for (const id of dataFiles.gaps()) {
    const file = dataFiles.path(id);
    const answered = ask(file);
    if (dataFiles.exists(id)) o.log(`${file} was missing: the missing-data hook brought it back`);
    else o.log(`${file} is missing and the missing-data hook ${answered ? 'did not bring it back' : 'failed'}`);
  }
}

/** Sizes of the data files 0..n-1, each checked to start with a valid header. */
function readDataSizes(o: Opening, nData: number): number[] {
  const { dataFiles } = o.files;
  const sizes: number[] = [];
  for (let f = 0; f < nData; f++) {
    let size = dataFiles.size(f);
    if (f === nData - 1 && size < DATA_HEADER_SIZE) {
      // A cut right after the file was created (its header never reached the
      // disk): nothing can be in it. The reference rewrites the header of its
      // current data file at every start, so it opens such a file too.
      dataFiles.create(f, encodeDataHeader({ created: 0, opened: 0, fileId: f }));
      o.log(`${dataFiles.path(f)} was cut inside its header (${size} bytes): header written again, the file is empty`);
      size = DATA_HEADER_SIZE;
    }
    try {
      decodeDataHeader(dataFiles.read(f, 0, DATA_HEADER_SIZE));
    } catch (err) {
      throw o.refuse(`${dataFiles.path(f)}: ${(err as Error).message}`);
    }
    sizes.push(size);
  }
  return sizes;
}

/** The index files up to the first one truncated inside its header, and the mode their headers say (or the server's). */
function readIndexImages(o: Opening, indexCount: number): { images: Buffer[]; mode: NsMode } {
  const { indexFiles } = o.files;
  const images: Buffer[] = [];
  let modeByte: number | undefined;
  for (let f = 0; f < indexCount; f++) {
    const buf = indexFiles.readAll(f);
    if (buf.length < INDEX_HEADER_SIZE) {
      o.log(`${indexFiles.path(f)} is truncated inside its header (${buf.length} bytes): rebuilding the index from the data files`);
      break;
    }
    let header;
    try {
      header = decodeIndexHeader(buf);
    } catch (err) {
      throw o.refuse(`${indexFiles.path(f)}: ${(err as Error).message}`);
    }
    if (modeByte === undefined) modeByte = header.mode;
    images.push(buf);
  }
  if (modeByte !== undefined && modeByte !== MODE_USER && modeByte !== MODE_SEQ) {
    throw o.refuse(`${indexFiles.path(0)}: unsupported index mode ${modeByte} (only user and sequential are supported)`);
  }
  const fileMode = modeByte === undefined ? undefined : modeByte === MODE_SEQ ? 'seq' : 'user';
  const running = o.ctx.opts.mode;
  if (running !== undefined && fileMode !== undefined && running !== fileMode) {
    throw o.refuse(
      `index created in ${fileMode === 'seq' ? 'sequential' : 'user'} mode but the server runs with --mode ${running}` +
        ' (stopping here to ensure no data loss)',
    );
  }
  return { images, mode: fileMode ?? running ?? 'user' };
}

/**
 * Applies every whole index entry to `state`, cutting the first file found
 * torn (or pointing past its data) there. Returns how many files were
 * loaded and the last data entry any of them points at.
 */
function loadIndexImages(o: Opening, state: LiveState, images: Buffer[], dataSizes: number[]): { loaded: number; coverage: Position | undefined } {
  const { dataFiles, indexFiles } = o.files;
  const nData = dataSizes.length;
  let coverage: Position | undefined;
  let loaded = 0;
  for (let f = 0; f < images.length; f++) {
    const buf = images[f];
    let at = INDEX_HEADER_SIZE;
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
      const certain = e.dataId !== 0 || f === 0 || !deleted || state.mode === 'user';
      if (e.dataId === 0) e.dataId = f;
      const dataEnd = e.offset + DATA_ENTRY_SIZE + e.key.length + e.length;
      if (certain && (e.dataId >= nData || e.offset < DATA_HEADER_SIZE || dataEnd > dataSizes[e.dataId])) {
        cutAt = at;
        why = `entry at offset ${at} points past the end of ${dataFiles.path(e.dataId)}`;
        break;
      }
      state.loadEntry(f, at, e);
      const pos = { fileId: e.dataId, offset: e.offset };
      if (certain && (!coverage || before(coverage, pos))) coverage = pos;
      at += INDEX_ENTRY_SIZE + e.key.length;
    }
    loaded = f + 1;
    state.resumeIndex(f, cutAt ?? buf.length);
    if (cutAt !== undefined) {
      indexFiles.truncate(f, cutAt);
      o.log(`${indexFiles.path(f)}: ${why}: truncated to ${cutAt} bytes`);
      break;
    }
  }
  return { loaded, coverage };
}

/**
 * Walks the data entries after `coverage` (the last data entry any index
 * entry points at): cuts a torn tail of the last data file and replays every
 * complete entry into the index. Also finds the data `previous` offset.
 */
function replayDataTail(o: Opening, state: LiveState, coverage: Position | undefined, dataSizes: number[]): void {
  const { dataFiles } = o.files;
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
      const head = dataFiles.read(fileId, offset, DATA_ENTRY_SIZE + 255);
      const h = readDataEntryHeader(head, 0);
      const end = h ? offset + DATA_ENTRY_SIZE + h.keyLength + h.length : Infinity;
      let torn = !h || end > size || head.length < DATA_ENTRY_SIZE + h.keyLength;
      const isTail = fileId === lastFile;
      if (!torn && h && !skipFirst && (h.flags & DATA_ENTRY_DELETED) === 0) {
        // an entry the index never saw: check it is whole before serving it
        const payload = dataFiles.read(fileId, offset + DATA_ENTRY_SIZE + h.keyLength, h.length);
        if (crc32c(payload) !== h.crc) torn = true;
      }
      if (torn) {
        if (!isTail) throw o.refuse(`${dataFiles.path(fileId)}: damaged entry at offset ${offset} before the last data file`);
        dataFiles.truncate(fileId, offset);
        dataSizes[fileId] = offset;
        o.log(`${dataFiles.path(fileId)}: torn entry at offset ${offset}: truncated to ${offset} bytes`);
        break;
      }
      const key = Buffer.from(head.subarray(DATA_ENTRY_SIZE, DATA_ENTRY_SIZE + (h as DataEntryHeader).keyLength));
      if (!skipFirst && replayEntry(o, state, fileId, offset, h as DataEntryHeader, key)) replayed++;
      skipFirst = false;
      state.noteDataEntry(offset);
      offset = end;
    }
  }
  if (replayed > 0) o.log(`replayed ${replayed} data entries the index did not hold`);
}

/** Applies one data entry to the index; false when it changed nothing. */
function replayEntry(o: Opening, state: LiveState, fileId: number, offset: number, h: DataEntryHeader, key: Buffer): boolean {
  while (state.fileId < fileId) state.startIndexFile(state.fileId + 1, o.ctx.now());
  const rec = state.find(key);
  if ((h.flags & DATA_ENTRY_DELETED) !== 0) {
    // a DEL's marker: applied unless the index already dropped the key
    if (!rec || !before({ fileId: rec.dataId, offset: rec.offset }, { fileId, offset })) return false;
    state.commitDelete(key, rec);
    return true;
  }
  if (state.mode === 'seq' && !rec && seqId(key) !== state.totals.nextEntry) {
    const where = `${o.files.dataFiles.path(fileId)}:${offset}`;
    o.log(`data entry at ${where} has sequential key ${seqId(key)} which cannot be placed (next id ${state.totals.nextEntry}): skipped`);
    return false;
  }
  state.commitSet(key, rec, fileId, offset, h.length, h.crc, h.timestamp);
  return true;
}
