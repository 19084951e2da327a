// 0-db v2 data files (`<data>/<ns>/d<N>`), packed little-endian:
//   header 28 B: "DAT0", u32 version (3), u64 created, u64 opened, u32 fileid
//   entry 18 B + key + payload: u8 idlen, u32 datalen, u32 previous, u32 crc,
//                               u8 flags, u32 timestamp, key, payload
// `previous` is the offset of the entry written before this one, which may sit
// in the previous data file. A DEL appends an empty entry flagged deleted.
import { ZdbFormatError } from './errors.ts';

export const DATA_MAGIC = 'DAT0';
export const DATA_VERSION = 3;
export const DATA_HEADER_SIZE = 28;
export const DATA_ENTRY_SIZE = 18;
export const DATA_ENTRY_DELETED = 1;
export const DATA_ENTRY_TRUNCATED = 2;

export interface DataHeader {
  version: number;
  created: number;
  opened: number;
  fileId: number;
}

export interface DataEntryHeader {
  keyLength: number;
  length: number;
  previous: number;
  crc: number;
  flags: number;
  timestamp: number;
}

export function encodeDataHeader(h: Omit<DataHeader, 'version'> & { version?: number }): Buffer {
  const b = Buffer.alloc(DATA_HEADER_SIZE);
  b.write(DATA_MAGIC, 0, 'latin1');
  b.writeUInt32LE(h.version ?? DATA_VERSION, 4);
  b.writeBigUInt64LE(BigInt(h.created), 8);
  b.writeBigUInt64LE(BigInt(h.opened), 16);
  b.writeUInt32LE(h.fileId >>> 0, 24);
  return b;
}

export function decodeDataHeader(b: Buffer): DataHeader {
  if (b.length < DATA_HEADER_SIZE) {
    throw new ZdbFormatError(`data header truncated: ${b.length} of ${DATA_HEADER_SIZE} bytes`);
  }
  const magic = b.toString('latin1', 0, 4);
  if (magic !== DATA_MAGIC) throw new ZdbFormatError(`data header: wrong magic ${JSON.stringify(magic)}, expected "DAT0"`);
  const version = b.readUInt32LE(4);
  if (version !== DATA_VERSION) {
    throw new ZdbFormatError(`data header: unsupported version ${version}, supported version: ${DATA_VERSION}`);
  }
  return {
    version,
    created: Number(b.readBigUInt64LE(8)),
    opened: Number(b.readBigUInt64LE(16)),
    fileId: b.readUInt32LE(24),
  };
}

export function dataEntrySize(keyLength: number, payloadLength: number): number {
  return DATA_ENTRY_SIZE + keyLength + payloadLength;
}

/** Writes header + key (not the payload) into `target` at `at`; returns bytes written. */
export function writeDataEntryHead(target: Buffer, at: number, h: Omit<DataEntryHeader, 'keyLength'>, key: Buffer): number {
  target[at] = key.length;
  target.writeUInt32LE(h.length >>> 0, at + 1);
  target.writeUInt32LE(h.previous >>> 0, at + 5);
  target.writeUInt32LE(h.crc >>> 0, at + 9);
  target[at + 13] = h.flags;
  target.writeUInt32LE(h.timestamp >>> 0, at + 14);
  key.copy(target, at + DATA_ENTRY_SIZE);
  return DATA_ENTRY_SIZE + key.length;
}

export function encodeDataEntry(h: Omit<DataEntryHeader, 'keyLength' | 'length'>, key: Buffer, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(dataEntrySize(key.length, payload.length));
  const n = writeDataEntryHead(b, 0, { ...h, length: payload.length }, key);
  payload.copy(b, n);
  return b;
}

/** Decodes the fixed part at `at`; undefined when fewer than 18 bytes remain. */
export function readDataEntryHeader(b: Buffer, at = 0): DataEntryHeader | undefined {
  if (at + DATA_ENTRY_SIZE > b.length) return undefined;
  return {
    keyLength: b[at],
    length: b.readUInt32LE(at + 1),
    previous: b.readUInt32LE(at + 5),
    crc: b.readUInt32LE(at + 9),
    flags: b[at + 13],
    timestamp: b.readUInt32LE(at + 14),
  };
}
