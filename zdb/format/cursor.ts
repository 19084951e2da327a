// SCAN/KEYCUR/HISTORY cursors: 0-db's packed index_bkey_t, 17 bytes LE:
//   u8 idlength, u32 fileid, u32 length, u32 idxoffset, u32 crc
// A cursor names one index entry; the server validates it by re-reading the
// entry and comparing length and crc.

export const CURSOR_SIZE = 17;

export interface Cursor {
  keyLength: number;
  fileId: number;
  length: number;
  indexOffset: number;
  crc: number;
}

export function encodeCursor(c: Cursor): Buffer {
  const b = Buffer.allocUnsafe(CURSOR_SIZE);
  b[0] = c.keyLength;
  b.writeUInt32LE(c.fileId >>> 0, 1);
  b.writeUInt32LE(c.length >>> 0, 5);
  b.writeUInt32LE(c.indexOffset >>> 0, 9);
  b.writeUInt32LE(c.crc >>> 0, 13);
  return b;
}

/** undefined when the bytes are not a cursor (wrong size). */
export function decodeCursor(b: Buffer): Cursor | undefined {
  if (b.length !== CURSOR_SIZE) return undefined;
  return {
    keyLength: b[0],
    fileId: b.readUInt32LE(1),
    length: b.readUInt32LE(5),
    indexOffset: b.readUInt32LE(9),
    crc: b.readUInt32LE(13),
  };
}
