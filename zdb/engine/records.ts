// What the key index (key-index.ts) holds for each live key, and the
// sequential-mode key encoding.

export interface KeyRecord {
  keyLength: number;
  /** data file id (== index file id of the entry: files move in lockstep) */
  dataId: number;
  /** offset of the data entry header in d<dataId> */
  offset: number;
  length: number;
  crc: number;
  timestamp: number;
  /** index file id and offset of the live index entry */
  idxId: number;
  idxOffset: number;
  /** `previous` field of that index entry (seq overwrites keep it) */
  idxPrevious: number;
  parentId: number;
  parentOffset: number;
}

/** Sequential-mode key: the id as 8 bytes little-endian. */
export function seqKey(id: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(id));
  return b;
}

/** The id of an 8-byte sequential key, undefined for any other length. */
export function seqId(key: Buffer): number | undefined {
  if (key.length !== 8) return undefined;
  const id = key.readBigUInt64LE(0);
  return id > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(id);
}
