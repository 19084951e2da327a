// DHCP option codes and typed accessors. Accessors never throw on a
// malformed value (they return undefined): clients send all kinds of things.
import { DhcpEncodeError, parseIpv4 } from './codec.ts';
import type { DhcpPacket } from './codec.ts';

export const Opt = {
  SUBNET_MASK: 1,
  TIME_OFFSET: 2,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  BOOT_SIZE: 13,
  DOMAIN: 15,
  ROOT_PATH: 17,
  INTERFACE_MTU: 26,
  BROADCAST: 28,
  NTP: 42,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_LIST: 55,
  MESSAGE: 56,
  MAX_SIZE: 57,
  RENEWAL: 58,
  REBINDING: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RAPID_COMMIT: 80,
  CLIENT_FQDN: 81,
  RELAY_AGENT: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  DOMAIN_SEARCH: 119,
  CLASSLESS_ROUTES: 121,
  PXELINUX_MAGIC: 208,
  IPXE_ENCAP: 175,
} as const;

/** PXE spec (2.1) sub-options of option 43 for PXE clients. */
export const PxeSubOpt = {
  MTFTP_IP: 1,
  DISCOVERY_CONTROL: 6,
  MCAST_ADDRS: 7,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

/** iPXE's encapsulated option 175 sub-options (iPXE include/ipxe/dhcp.h). */
export const IpxeSubOpt = {
  PRIORITY: 1,
  KEEP_SAN: 8,
  SKIP_SAN_BOOT: 9,
  SYSLOGS: 85,
  CERT: 91,
  PRIVKEY: 92,
  CROSSCERT: 93,
  NO_PXEDHCP: 176,
  BUS_ID: 177,
  SAN_FILENAME: 188,
  BIOS_DRIVE: 189,
  USERNAME: 190,
  PASSWORD: 191,
  REVERSE_USERNAME: 192,
  REVERSE_PASSWORD: 193,
  VERSION: 235,
  // Feature flags: present (value 1) when the running iPXE build has them.
  FEATURE_PXE_EXT: 16,
  FEATURE_ISCSI: 17,
  FEATURE_AOE: 18,
  FEATURE_HTTP: 19,
  FEATURE_HTTPS: 20,
  FEATURE_TFTP: 21,
  FEATURE_FTP: 22,
  FEATURE_DNS: 23,
  FEATURE_BZIMAGE: 24,
  FEATURE_MULTIBOOT: 25,
  FEATURE_SLAM: 26,
  FEATURE_SRP: 27,
  FEATURE_NBI: 32,
  FEATURE_PXE: 33,
  FEATURE_ELF: 34,
  FEATURE_COMBOOT: 35,
  FEATURE_EFI: 36,
  FEATURE_FCOE: 37,
  FEATURE_VLAN: 38,
  FEATURE_MENU: 39,
  FEATURE_SDI: 40,
  FEATURE_NFS: 41,
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bytesToString(b: Buffer): string {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  const s = b.subarray(0, end);
  try {
    return utf8.decode(s);
  } catch {
    return s.toString('latin1');
  }
}

/** UTF-8 when valid, else latin1; trailing NULs stripped. */
export function optString(p: DhcpPacket, code: number): string | undefined {
  const v = p.options.get(code);
  return v ? bytesToString(v) : undefined;
}

export function optIp(p: DhcpPacket, code: number): string | undefined {
  const v = p.options.get(code);
  return v && v.length === 4 ? `${v[0]}.${v[1]}.${v[2]}.${v[3]}` : undefined;
}

export function optIps(p: DhcpPacket, code: number): string[] | undefined {
  const v = p.options.get(code);
  if (!v || v.length === 0 || v.length % 4 !== 0) return undefined;
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(`${v[i]}.${v[i + 1]}.${v[i + 2]}.${v[i + 3]}`);
  return out;
}

export function optU8(p: DhcpPacket, code: number): number | undefined {
  const v = p.options.get(code);
  return v && v.length === 1 ? v[0] : undefined;
}

export function optU16(p: DhcpPacket, code: number): number | undefined {
  const v = p.options.get(code);
  return v && v.length === 2 ? v.readUInt16BE(0) : undefined;
}

export function optU32(p: DhcpPacket, code: number): number | undefined {
  const v = p.options.get(code);
  return v && v.length === 4 ? v.readUInt32BE(0) : undefined;
}

/** A list of big-endian u16 (option 93 client architectures). */
export function optU16List(p: DhcpPacket, code: number): number[] | undefined {
  const v = p.options.get(code);
  if (!v || v.length === 0 || v.length % 2 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/** Option 55 as a list of codes. */
export function optParamList(p: DhcpPacket): number[] | undefined {
  const v = p.options.get(Opt.PARAM_LIST);
  return v ? [...v] : undefined;
}

/**
 * Option 77. RFC 3004 defines a list of length-prefixed class names, but
 * iPXE and many ROMs send one plain string ("iPXE"). A value is read as the
 * RFC 3004 list only when the lengths tile it exactly; otherwise it is one
 * string.
 */
export function optUserClass(p: DhcpPacket): string[] | undefined {
  const v = p.options.get(Opt.USER_CLASS);
  if (!v) return undefined;
  if (v.length === 0) return [];
  const list: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i];
    if (len === 0 || i + 1 + len > v.length) return [bytesToString(v)];
    list.push(bytesToString(v.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return list;
}

/**
 * Option 97 (RFC 4578): type 0 followed by a 16-byte GUID, shown the way
 * SMBIOS tools, QEMU's -uuid and iPXE's ${uuid} show it: the wire bytes hold
 * the first three fields little-endian (SMBIOS 2.6 order).
 */
export function optUuid(p: DhcpPacket): string | undefined {
  const v = p.options.get(Opt.CLIENT_UUID);
  if (!v || v.length !== 17 || v[0] !== 0) return undefined;
  return guidToString(v.subarray(1));
}

/** 16 GUID bytes, first three fields little-endian, to the canonical string. */
export function guidToString(g: Buffer): string {
  const hex = (b: Buffer) => b.toString('hex');
  const rev = (b: Buffer) => hex(Buffer.from(b).reverse());
  return `${rev(g.subarray(0, 4))}-${rev(g.subarray(4, 6))}-${rev(g.subarray(6, 8))}-${hex(g.subarray(8, 10))}-${hex(g.subarray(10, 16))}`;
}

/** The canonical GUID string to its 16 wire bytes (inverse of guidToString); undefined when malformed. */
export function guidFromString(s: string): Buffer | undefined {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(s);
  if (!m) return undefined;
  const rev = (h: string) => Buffer.from(h, 'hex').reverse();
  return Buffer.concat([rev(m[1]), rev(m[2]), rev(m[3]), Buffer.from(m[4], 'hex'), Buffer.from(m[5], 'hex')]);
}

/** Option 94 client network interface identifier: type 1 (UNDI) + major + minor. */
export function optClientNdi(p: DhcpPacket): { type: number; major: number; minor: number } | undefined {
  const v = p.options.get(Opt.CLIENT_NDI);
  return v && v.length === 3 ? { type: v[0], major: v[1], minor: v[2] } : undefined;
}

/**
 * Splits an encapsulated option (43, 175) into its sub-options; undefined
 * when a sub-option runs past the value. Pad (0) is skipped and end (255)
 * stops, as in the main option area.
 */
export function parseEncapsulated(v: Buffer): Map<number, Buffer> | undefined {
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < v.length) {
    const code = v[i];
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    if (i + 1 >= v.length || i + 2 + v[i + 1] > v.length) return undefined;
    const val = v.subarray(i + 2, i + 2 + v[i + 1]);
    const prev = out.get(code);
    out.set(code, prev ? Buffer.concat([prev, val]) : Buffer.from(val));
    i += 2 + v[i + 1];
  }
  return out;
}

export function optEncapsulated(p: DhcpPacket, code: number): Map<number, Buffer> | undefined {
  const v = p.options.get(code);
  return v ? parseEncapsulated(v) : undefined;
}

export function encodeString(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

export function encodeIp(ip: string): Buffer {
  const b = parseIpv4(ip);
  if (!b) throw new DhcpEncodeError(`not a dotted-quad IPv4 address: ${JSON.stringify(ip)}`);
  return b;
}

export function encodeIps(ips: string[]): Buffer {
  return Buffer.concat(ips.map(encodeIp));
}

function encodeUint(n: number, size: 1 | 2 | 4): Buffer {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** (8 * size)) {
    throw new DhcpEncodeError(`${n} is not an unsigned ${8 * size}-bit integer`);
  }
  const b = Buffer.alloc(size);
  b.writeUIntBE(n, 0, size);
  return b;
}

export function encodeU8(n: number): Buffer {
  return encodeUint(n, 1);
}

export function encodeU16(n: number): Buffer {
  return encodeUint(n, 2);
}

export function encodeU32(n: number): Buffer {
  return encodeUint(n, 4);
}

/** Option 97 value: type 0 + GUID bytes from the canonical string. */
export function encodeUuid(uuid: string): Buffer {
  const g = guidFromString(uuid);
  if (!g) throw new DhcpEncodeError(`not a GUID string: ${JSON.stringify(uuid)}`);
  return Buffer.concat([Buffer.from([0]), g]);
}

/** Encapsulated sub-options (43, 175) from a code -> value map, ending with 255. */
export function encodeEncapsulated(sub: Iterable<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of sub) {
    if (!Number.isInteger(code) || code < 1 || code > 254) throw new DhcpEncodeError(`sub-option code ${code} must be 1-254`);
    if (value.length > 255) throw new DhcpEncodeError(`sub-option ${code} is ${value.length} bytes; at most 255 fit`);
    parts.push(Buffer.from([code, value.length]), value);
  }
  parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

export interface PxeBootServer {
  type: number; // u16 boot server type (0 = PXE bootstrap server)
  ips: string[];
}

export interface PxeMenuItem {
  type: number; // u16 boot server type this item selects
  description: string;
}

/**
 * Option 43 for PXE clients (PXE spec 2.1, table 2-1). For proxyDHCP that
 * names the boot file directly, pass discoveryControl 8 ("boot file name is
 * in the offer; no boot server discovery").
 */
export function encodePxeVendorOptions(opts: {
  discoveryControl?: number;
  bootServers?: PxeBootServer[];
  menu?: PxeMenuItem[];
  menuPrompt?: { timeout: number; prompt: string };
  bootItem?: { type: number; layer: number };
}): Buffer {
  const sub: [number, Buffer][] = [];
  // Sub-option order follows dnsmasq (6, 10, 8, 9, 71) so replies can be compared byte for byte.
  if (opts.discoveryControl !== undefined) sub.push([PxeSubOpt.DISCOVERY_CONTROL, encodeU8(opts.discoveryControl)]);
  if (opts.menuPrompt) {
    sub.push([PxeSubOpt.MENU_PROMPT, Buffer.concat([encodeU8(opts.menuPrompt.timeout), encodeString(opts.menuPrompt.prompt)])]);
  }
  if (opts.bootServers) {
    sub.push([
      PxeSubOpt.BOOT_SERVERS,
      Buffer.concat(opts.bootServers.map((s) => Buffer.concat([encodeU16(s.type), encodeU8(s.ips.length), encodeIps(s.ips)]))),
    ]);
  }
  if (opts.menu) {
    sub.push([
      PxeSubOpt.BOOT_MENU,
      Buffer.concat(
        opts.menu.map((m) => {
          const d = encodeString(m.description);
          return Buffer.concat([encodeU16(m.type), encodeU8(d.length), d]);
        }),
      ),
    ]);
  }
  if (opts.bootItem) sub.push([PxeSubOpt.BOOT_ITEM, Buffer.concat([encodeU16(opts.bootItem.type), encodeU16(opts.bootItem.layer)])]);
  return encodeEncapsulated(sub);
}
