// 0-flist's Cap'n Proto structs (format/flist.capnp of threefoldtech/0-flist)
// decoded with our reader: the field positions below are those the schema
// compiler assigns (data bytes and pointer slots), noted per struct.
import { CapnpError, CapnpMessage, type StructReader } from './capnp.ts';

export type SpecialType = 'socket' | 'block' | 'chardev' | 'fifopipe' | 'unknown';
const SPECIAL_TYPES: SpecialType[] = ['socket', 'block', 'chardev', 'fifopipe', 'unknown'];

export interface LegacyBlock {
  /** blake2b-128 of the ciphertext: the key in the backend */
  hash: Buffer;
  /** blake2b-128 of the plain chunk: the XXTEA key */
  key: Buffer;
}

export type LegacyAttributes =
  | { kind: 'dir'; key: string }
  | { kind: 'file'; blockSize: number; blocks: LegacyBlock[] }
  | { kind: 'link'; target: Buffer }
  | { kind: 'special'; type: SpecialType; data: Buffer };

export interface LegacyInode {
  name: string;
  size: bigint;
  attributes: LegacyAttributes;
  aclkey: string;
  mtime: number;
  ctime: number;
}

export interface LegacyDir {
  name: string;
  location: string;
  contents: LegacyInode[];
  parent: string;
  size: bigint;
  aclkey: string;
  mtime: number;
  ctime: number;
}

export interface LegacyAci {
  uname: string;
  gname: string;
  mode: number;
  /** -1 when the writer did not record it (old flists) */
  uid: bigint;
  gid: bigint;
}

// Inode: data 3 words {size u64 @0, union tag u16 @8, mtime u32 @12, ctime u32 @16}; pointers {name, attributes, aclkey}
function inode(s: StructReader): LegacyInode {
  const which = s.uint16(8);
  const a = s.struct(1);
  let attributes: LegacyAttributes;
  if (which === 0) {
    // SubDir: pointers {key}
    attributes = { kind: 'dir', key: a?.text(0) ?? '' };
  } else if (which === 1) {
    // File: data {blockSize u16 @0}; pointers {blocks: List(FileBlock{hash, key})}
    const blocks: LegacyBlock[] = [];
    for (const b of a?.list(0)?.structs() ?? []) blocks.push({ hash: b.data(0) ?? Buffer.alloc(0), key: b.data(1) ?? Buffer.alloc(0) });
    attributes = { kind: 'file', blockSize: a?.uint16(0) ?? 0, blocks };
  } else if (which === 2) {
    // Link: pointers {target}
    attributes = { kind: 'link', target: a?.textBytes(0) ?? Buffer.alloc(0) };
  } else if (which === 3) {
    // Special: data {type u16 @0}; pointers {data}
    attributes = { kind: 'special', type: SPECIAL_TYPES[a?.uint16(0) ?? 4] ?? 'unknown', data: a?.data(0) ?? Buffer.alloc(0) };
  } else {
    throw new CapnpError(`inode attribute union has the unknown case ${which}`);
  }
  return { name: s.text(0) ?? '', size: s.uint64(0), attributes, aclkey: s.text(2) ?? '', mtime: s.uint32(12), ctime: s.uint32(16) };
}

/** Dir: data 2 words {size u64 @0, mtime u32 @8, ctime u32 @12}; pointers {name, location, contents, parent, aclkey}. */
export function decodeDir(buf: Buffer): LegacyDir {
  const s = CapnpMessage.parse(buf).root();
  const contents: LegacyInode[] = [];
  for (const i of s.list(2)?.structs() ?? []) contents.push(inode(i));
  return { name: s.text(0) ?? '', location: s.text(1) ?? '', contents, parent: s.text(3) ?? '', size: s.uint64(0), aclkey: s.text(4) ?? '', mtime: s.uint32(8), ctime: s.uint32(12) };
}

/** ACI: data 3 words {mode u16 @0, id u32 @4, uid i64 @8, gid i64 @16, both defaulting to -1}; pointers {uname, gname, rights}. */
export function decodeAci(buf: Buffer): LegacyAci {
  const s = CapnpMessage.parse(buf).root();
  return { uname: s.text(0) ?? '', gname: s.text(1) ?? '', mode: s.uint16(0), uid: s.int64(8, -1n), gid: s.int64(16, -1n) };
}
