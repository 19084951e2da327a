// HISTORY's "next" argument: 0-db's packed index_ekey_t (u32 index file id,
// u32 offset of an index entry). All-zero means the end of the chain.

export const HISTORY_KEY_SIZE = 8;

export function encodeHistoryKey(indexId: number, offset: number): Buffer | undefined {
  if (indexId === 0 && offset === 0) return undefined;
  const b = Buffer.allocUnsafe(HISTORY_KEY_SIZE);
  b.writeUInt32LE(indexId >>> 0, 0);
  b.writeUInt32LE(offset >>> 0, 4);
  return b;
}

export function decodeHistoryKey(b: Buffer): { indexId: number; offset: number } | undefined {
  if (b.length !== HISTORY_KEY_SIZE) return undefined;
  return { indexId: b.readUInt32LE(0), offset: b.readUInt32LE(4) };
}
