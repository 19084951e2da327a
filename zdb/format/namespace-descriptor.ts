// 0-db v2 namespace descriptor (`<index>/<ns>/zdb-namespace`), packed LE:
//   u32 version (1), u8 namelen, u8 passlen, u64 maxsize, u8 flags, name, password
// flags: 1 public, 2 worm, 4 extended (always set by v2). The mode is not
// here: it is the mode byte of the namespace's index headers. lock/freeze are
// runtime-only and never persisted.
import { ZdbFormatError } from './errors.ts';

export const NS_DESCRIPTOR_VERSION = 1;
export const NS_DESCRIPTOR_SIZE = 15;
export const NS_FLAG_PUBLIC = 1;
export const NS_FLAG_WORM = 2;
export const NS_FLAG_EXTENDED = 4;

export interface NsDescriptor {
  name: string;
  password: string;
  /** a u64 on disk: 0-db stores what NSSET gave it, up to 2^64 - 1 */
  maxsize: bigint;
  public: boolean;
  worm: boolean;
}

export function encodeNsDescriptor(d: NsDescriptor): Buffer {
  const name = Buffer.from(d.name, 'utf8');
  const pass = Buffer.from(d.password, 'utf8');
  if (name.length > 255 || pass.length > 255) throw new ZdbFormatError('namespace descriptor: name or password longer than 255 bytes');
  const b = Buffer.alloc(NS_DESCRIPTOR_SIZE + name.length + pass.length);
  b.writeUInt32LE(NS_DESCRIPTOR_VERSION, 0);
  b[4] = name.length;
  b[5] = pass.length;
  b.writeBigUInt64LE(BigInt.asUintN(64, d.maxsize), 6);
  b[14] = (d.public ? NS_FLAG_PUBLIC : 0) | (d.worm ? NS_FLAG_WORM : 0) | NS_FLAG_EXTENDED;
  name.copy(b, NS_DESCRIPTOR_SIZE);
  pass.copy(b, NS_DESCRIPTOR_SIZE + name.length);
  return b;
}

export function decodeNsDescriptor(b: Buffer): NsDescriptor {
  if (b.length < NS_DESCRIPTOR_SIZE) throw new ZdbFormatError(`namespace descriptor truncated: ${b.length} bytes`);
  const version = b.readUInt32LE(0);
  if (version !== NS_DESCRIPTOR_VERSION) throw new ZdbFormatError(`namespace descriptor: unsupported version ${version}`);
  const nlen = b[4];
  const plen = b[5];
  if (b.length < NS_DESCRIPTOR_SIZE + nlen + plen) throw new ZdbFormatError('namespace descriptor truncated: name or password cut');
  const flags = b[14];
  return {
    name: b.toString('utf8', NS_DESCRIPTOR_SIZE, NS_DESCRIPTOR_SIZE + nlen),
    password: b.toString('utf8', NS_DESCRIPTOR_SIZE + nlen, NS_DESCRIPTOR_SIZE + nlen + plen),
    maxsize: b.readBigUInt64LE(6),
    public: (flags & NS_FLAG_PUBLIC) !== 0,
    worm: (flags & NS_FLAG_WORM) !== 0,
  };
}
