// 0-db v2 index files (`<index>/<ns>/i<N>`), packed little-endian:
//   header 29 B: "IDX0", u32 version (4), u64 created, u64 opened, u32 fileid, u8 mode
//   entry 34 B + key: u8 idlen, u32 offset, u32 length, u32 previous, u8 flags,
//                     u32 dataid, u32 timestamp, u32 crc, u32 parentid, u32 parentoff, key
import { ZdbFormatError } from './errors.ts';

export const INDEX_MAGIC = 'IDX0';
export const INDEX_VERSION = 4;
export const INDEX_HEADER_SIZE = 29;
export const INDEX_ENTRY_SIZE = 34;
/** Byte offset of `flags` inside an index entry (DEL rewrites only this byte). */
export const INDEX_FLAGS_OFFSET = 13;
export const INDEX_ENTRY_DELETED = 1;

/** Index header mode byte. */
export const MODE_USER = 0;
export const MODE_SEQ = 1;
export const MODE_DIRECT_KEY = 2;
export const MODE_DIRECT_BLOCK = 3;

export interface IndexHeader {
  version: number;
  created: number;
  opened: number;
  fileId: number;
  mode: number;
}

export interface IndexEntry {
  key: Buffer;
  offset: number;
  length: number;
  previous: number;
  flags: number;
  dataId: number;
  timestamp: number;
  crc: number;
  parentId: number;
  parentOffset: number;
}

export function encodeIndexHeader(h: Omit<IndexHeader, 'version'> & { version?: number }): Buffer {
  const b = Buffer.alloc(INDEX_HEADER_SIZE);
  b.write(INDEX_MAGIC, 0, 'latin1');
  b.writeUInt32LE(h.version ?? INDEX_VERSION, 4);
  b.writeBigUInt64LE(BigInt(h.created), 8);
  b.writeBigUInt64LE(BigInt(h.opened), 16);
  b.writeUInt32LE(h.fileId >>> 0, 24);
  b.writeUInt8(h.mode, 28);
  return b;
}

/** Throws ZdbFormatError on a short buffer, wrong magic or unsupported version. */
export function decodeIndexHeader(b: Buffer): IndexHeader {
  if (b.length < INDEX_HEADER_SIZE) {
    throw new ZdbFormatError(`index header truncated: ${b.length} of ${INDEX_HEADER_SIZE} bytes`);
  }
  const magic = b.toString('latin1', 0, 4);
  if (magic !== INDEX_MAGIC) throw new ZdbFormatError(`index header: wrong magic ${JSON.stringify(magic)}, expected "IDX0"`);
  const version = b.readUInt32LE(4);
  if (version !== INDEX_VERSION) {
    throw new ZdbFormatError(`index header: unsupported version ${version}, supported version: ${INDEX_VERSION}`);
  }
  return {
    version,
    created: Number(b.readBigUInt64LE(8)),
    opened: Number(b.readBigUInt64LE(16)),
    fileId: b.readUInt32LE(24),
    mode: b[28],
  };
}

export function indexEntrySize(keyLength: number): number {
  return INDEX_ENTRY_SIZE + keyLength;
}

/** Writes an entry into `target` at `at` (no allocation); returns the bytes written. */
export function writeIndexEntry(target: Buffer, at: number, e: IndexEntry): number {
  const klen = e.key.length;
  target[at] = klen;
  target.writeUInt32LE(e.offset >>> 0, at + 1);
  target.writeUInt32LE(e.length >>> 0, at + 5);
  target.writeUInt32LE(e.previous >>> 0, at + 9);
  target[at + 13] = e.flags;
  target.writeUInt32LE(e.dataId >>> 0, at + 14);
  target.writeUInt32LE(e.timestamp >>> 0, at + 18);
  target.writeUInt32LE(e.crc >>> 0, at + 22);
  target.writeUInt32LE(e.parentId >>> 0, at + 26);
  target.writeUInt32LE(e.parentOffset >>> 0, at + 30);
  e.key.copy(target, at + INDEX_ENTRY_SIZE);
  return INDEX_ENTRY_SIZE + klen;
}

export function encodeIndexEntry(e: IndexEntry): Buffer {
  const b = Buffer.allocUnsafe(indexEntrySize(e.key.length));
  writeIndexEntry(b, 0, e);
  return b;
}

/**
 * Decodes the entry at `at`; returns undefined when `b` ends before the entry
 * does (a torn tail). The key is copied so callers may keep it.
 */
export function readIndexEntry(b: Buffer, at = 0): IndexEntry | undefined {
  if (at + INDEX_ENTRY_SIZE > b.length) return undefined;
  const klen = b[at];
  if (at + INDEX_ENTRY_SIZE + klen > b.length) return undefined;
  return {
    key: Buffer.from(b.subarray(at + INDEX_ENTRY_SIZE, at + INDEX_ENTRY_SIZE + klen)),
    offset: b.readUInt32LE(at + 1),
    length: b.readUInt32LE(at + 5),
    previous: b.readUInt32LE(at + 9),
    flags: b[at + 13],
    dataId: b.readUInt32LE(at + 14),
    timestamp: b.readUInt32LE(at + 18),
    crc: b.readUInt32LE(at + 22),
    parentId: b.readUInt32LE(at + 26),
    parentOffset: b.readUInt32LE(at + 30),
  };
}
