// What a pack source is, from its first bytes (the name's extension is not
// trusted): compressed data by its magic number, an ar archive (a .deb), or a
// tar by its first header (the "ustar" magic, or a v7 header whose checksum
// adds up). Pure functions over a Buffer.

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

const MAGICS: [Compression, Buffer][] = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['bzip2', Buffer.from('BZh')],
];

export const AR_MAGIC = Buffer.from('!<arch>\n');
export const TAR_BLOCK = 512;

export function compressionOf(head: Buffer): Compression {
  for (const [name, magic] of MAGICS) {
    if (head.length >= magic.length && head.subarray(0, magic.length).equals(magic)) return name;
  }
  return 'none';
}

export function isAr(head: Buffer): boolean {
  return head.length >= AR_MAGIC.length && head.subarray(0, AR_MAGIC.length).equals(AR_MAGIC);
}

/** A tar header block: "ustar" at offset 257, or a checksum (bytes 148..155 counted as spaces) that matches. */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < TAR_BLOCK) return false;
  if (block.subarray(257, 262).toString('latin1') === 'ustar') return true;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === parseInt(field, 8) && block[0] !== 0;
}

/** The first bytes in hex, for a refusal that says what the file starts with. */
export function headHex(head: Buffer, n = 8): string {
  return [...head.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
