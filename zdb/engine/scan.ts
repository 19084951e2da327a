// Walks index files in write order for SCAN/RSCAN, like the reference: live
// (not deleted) entries only, crossing file boundaries. Forward reads the
// files in chunks; backward follows each entry's `previous` offset, which
// points into the previous file when it is not smaller than the current one.
import { INDEX_ENTRY_DELETED, INDEX_ENTRY_SIZE, INDEX_HEADER_SIZE, readIndexEntry } from '../format/index.ts';
import type { IndexEntry } from '../format/index.ts';
import type { FileSet } from './file-set.ts';

export interface WalkedEntry {
  fileId: number;
  offset: number;
  entry: IndexEntry;
}

const CHUNK = 64 * 1024;

export class IndexWalker {
  private files: FileSet;
  private lastFileId: number;
  private last: { fileId: number; offset: number } | undefined;

  /** `last` = position of the last entry appended (RSCAN's start), if any. */
  constructor(files: FileSet, lastFileId: number, last?: { fileId: number; offset: number }) {
    this.files = files;
    this.lastFileId = lastFileId;
    this.last = last;
  }

  entryAt(fileId: number, offset: number): IndexEntry | undefined {
    if (fileId > this.lastFileId || offset < INDEX_HEADER_SIZE || !this.files.exists(fileId)) return undefined;
    return readIndexEntry(this.files.read(fileId, offset, INDEX_ENTRY_SIZE + 255), 0);
  }

  /** Live entries strictly after `from` (or from the very first one). */
  *forward(from?: { fileId: number; offset: number }): Generator<WalkedEntry> {
    let fileId = from ? from.fileId : 0;
    let offset = INDEX_HEADER_SIZE;
    if (from) {
      const cur = this.entryAt(from.fileId, from.offset);
      if (!cur) return;
      offset = from.offset + INDEX_ENTRY_SIZE + cur.key.length;
    }
    for (; fileId <= this.lastFileId; fileId++, offset = INDEX_HEADER_SIZE) {
      if (!this.files.exists(fileId)) continue;
      for (;;) {
        const buf = this.files.read(fileId, offset, CHUNK);
        let at = 0;
        for (;;) {
          const e = readIndexEntry(buf, at);
          if (!e) break;
          if ((e.flags & INDEX_ENTRY_DELETED) === 0) yield { fileId, offset: offset + at, entry: e };
          at += INDEX_ENTRY_SIZE + e.key.length;
        }
        if (buf.length < CHUNK) break;
        offset += at;
      }
    }
  }

  /** Live entries strictly before `from` (or from the last one, included). */
  *backward(from?: { fileId: number; offset: number }): Generator<WalkedEntry> {
    let pos: { fileId: number; offset: number } | undefined;
    if (from) {
      pos = this.previousOf(from.fileId, from.offset);
    } else {
      pos = this.last;
    }
    while (pos) {
      const e = this.entryAt(pos.fileId, pos.offset);
      if (!e) return;
      if ((e.flags & INDEX_ENTRY_DELETED) === 0) yield { fileId: pos.fileId, offset: pos.offset, entry: e };
      pos = this.previousFrom(pos.fileId, pos.offset, e.previous);
    }
  }

  private previousOf(fileId: number, offset: number): { fileId: number; offset: number } | undefined {
    const e = this.entryAt(fileId, offset);
    return e ? this.previousFrom(fileId, offset, e.previous) : undefined;
  }

  private previousFrom(fileId: number, offset: number, previous: number): { fileId: number; offset: number } | undefined {
    if (previous < INDEX_HEADER_SIZE) return undefined;
    if (previous < offset) return { fileId, offset: previous };
    // the previous entry lives in an earlier file: skip files that hold no entry
    for (let f = fileId - 1; f >= 0; f--) {
      if (!this.files.exists(f)) return undefined;
      if (this.files.size(f) > previous) return { fileId: f, offset: previous };
    }
    return undefined;
  }
}
