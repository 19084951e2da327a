// The reply builder: a decoded request, the answer a handler chose (reply.ts
// knows nothing of pools or modes) and the interface it came in on become the
// reply's bytes and where they go, or a reason there is none. Pure: the
// socket code only sends what this returns.
import { encodeDhcp, MessageType } from './codec.ts';
import type { DhcpPacket } from './codec.ts';
import { encodeIp, encodeIps, encodePxeVendorOptions, encodeString, encodeU32, Opt, optU16 } from './options.ts';
import type { BootDecision } from './classifier.ts';
import type { DhcpPoolSettings } from './settings.ts';

const CLIENT_PORT = 68;
const SERVER_PORT = 67;
const ZERO = '0.0.0.0';
const BROADCAST = '255.255.255.255';
/** RFC 2131 4.1: the server's UDP/IP headers come off the interface MTU. */
const IP_UDP_HEADERS = 28;

/** What a handler decided to answer. */
export interface Answer {
  type: typeof MessageType.OFFER | typeof MessageType.ACK | typeof MessageType.NAK;
  yiaddr?: string;
  leaseSeconds?: number;
  decision?: BootDecision;
  /** Option 56, NAK only. */
  message?: string;
  hostname?: string;
  /** 4011 answers carry the PXE boot item the client asked for. */
  bootItem?: { type: number; layer: number };
}

/** The interface a request arrived on, with its reply options encoded once. */
export interface ReplyIface {
  name: string;
  /** Our address on this network: option 54 and siaddr. */
  address: string;
  mtu: number;
  serverIdOpt: Buffer;
  tftpServerOpt: Buffer;
  /** Subnet mask, router, DNS and domain (full mode only: proxy hands out no network settings). */
  network: readonly [number, Buffer][];
  /** Options 51, 58 and 59 of the last lease time sent: nearly every reply carries the same. */
  leaseOpts?: { seconds: number; lease: Buffer; renewal: Buffer; rebinding: Buffer };
}

/** Where the request came from: the boot-server port answers its sender directly. */
export interface Arrival {
  proxyPort: boolean;
  address: string;
  port: number;
}

export type Built = { ok: true; bytes: Buffer; host: string; port: number } | { ok: false; reason: string };

export function replyIface(name: string, address: string, mtu: number, network: readonly [number, Buffer][]): ReplyIface {
  return { name, address, mtu, serverIdOpt: encodeIp(address), tftpServerOpt: encodeString(address), network };
}

export function networkOptions(pool: DhcpPoolSettings | undefined): [number, Buffer][] {
  if (!pool) return [];
  const out: [number, Buffer][] = [[Opt.SUBNET_MASK, encodeIp(pool.subnetMask)]];
  if (pool.router) out.push([Opt.ROUTER, encodeIp(pool.router)]);
  if (pool.dns.length) out.push([Opt.DNS, encodeIps(pool.dns)]);
  if (pool.domain) out.push([Opt.DOMAIN, encodeString(pool.domain)]);
  return out;
}

// PXE 2.1 discovery control 8: the boot file is in this offer, no boot-server discovery.
const PXE_DISCOVERY = encodePxeVendorOptions({ discoveryControl: 8 });

export function buildReply(req: DhcpPacket, a: Answer, iface: ReplyIface, from: Arrival): Built {
  const nak = a.type === MessageType.NAK;
  const relayed = req.giaddr !== ZERO;
  const reply: DhcpPacket = {
    op: 2,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    // A relay broadcasts a NAK on the client's segment: the client may still think it has an address.
    flags: nak && relayed ? req.flags | 0x8000 : req.flags,
    ciaddr: nak || a.type === MessageType.OFFER ? ZERO : req.ciaddr,
    yiaddr: a.yiaddr ?? ZERO,
    siaddr: nak ? ZERO : iface.address,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: '',
    options: replyOptions(req, a, iface),
  };
  const bootfile = !nak ? a.decision?.bootfile : undefined;
  // The BOOTP field holds 127 characters; a longer URL travels in option 67 only.
  if (bootfile && bootfile.length < 128) reply.file = bootfile;
  const clientMax = optU16(req, Opt.MAX_SIZE) ?? 576;
  let bytes: Buffer;
  try {
    bytes = encodeDhcp(reply, { maxSize: Math.min(clientMax, iface.mtu - IP_UDP_HEADERS) });
  } catch (e) {
    return { ok: false, reason: `reply does not fit: ${(e as Error).message}` };
  }
  return { ok: true, bytes, ...destination(req, nak, from) };
}

function replyOptions(req: DhcpPacket, a: Answer, iface: ReplyIface): Map<number, Buffer> {
  const d = a.decision;
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, MESSAGE_TYPE[a.type]);
  options.set(Opt.SERVER_ID, iface.serverIdOpt);
  if (a.type === MessageType.NAK) {
    if (a.message) options.set(Opt.MESSAGE, encodeString(a.message));
  } else {
    if (a.leaseSeconds !== undefined) {
      const t = leaseOptions(iface, a.leaseSeconds);
      options.set(Opt.LEASE_TIME, t.lease);
      options.set(Opt.RENEWAL, t.renewal);
      options.set(Opt.REBINDING, t.rebinding);
    }
    // Network settings go with an address (and to INFORM, which has one).
    if (a.yiaddr || a.type === MessageType.ACK) for (const [code, v] of iface.network) options.set(code, v);
    if (a.hostname) options.set(Opt.HOSTNAME, encodeString(a.hostname));
    if (d?.bootfile) {
      if (d.transport === 'tftp') options.set(Opt.TFTP_SERVER, iface.tftpServerOpt);
      options.set(Opt.BOOTFILE, encodeString(d.bootfile));
    }
    if (d?.echoVendor) options.set(Opt.VENDOR_CLASS, VENDOR[d.echoVendor]);
    const uuid = req.options.get(Opt.CLIENT_UUID);
    if (uuid && d?.netboot) options.set(Opt.CLIENT_UUID, uuid);
    if (d?.bootfile && a.bootItem) options.set(Opt.VENDOR_SPECIFIC, encodePxeVendorOptions({ bootItem: a.bootItem }));
    else if (d?.bootfile && d.pxeOptions) options.set(Opt.VENDOR_SPECIFIC, PXE_DISCOVERY);
  }
  // RFC 6842: the client identifier goes back in every reply, so a client can tell its answers apart.
  const clientId = req.options.get(Opt.CLIENT_ID);
  if (clientId) options.set(Opt.CLIENT_ID, clientId);
  // RFC 3046 2.2: relay agent information goes back unchanged in every reply; relays
  // and snooping switches that added it route the reply by it (and may drop one without).
  const agentInfo = req.options.get(Opt.RELAY_AGENT);
  if (agentInfo) options.set(Opt.RELAY_AGENT, agentInfo);
  return options;
}

/** RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8 of it. */
function leaseOptions(iface: ReplyIface, seconds: number): NonNullable<ReplyIface['leaseOpts']> {
  if (iface.leaseOpts?.seconds !== seconds) {
    iface.leaseOpts = { seconds, lease: encodeU32(seconds), renewal: encodeU32(Math.floor(seconds / 2)), rebinding: encodeU32(Math.floor((seconds * 7) / 8)) };
  }
  return iface.leaseOpts;
}

const MESSAGE_TYPE: Record<number, Buffer> = {
  [MessageType.OFFER]: Buffer.from([MessageType.OFFER]),
  [MessageType.ACK]: Buffer.from([MessageType.ACK]),
  [MessageType.NAK]: Buffer.from([MessageType.NAK]),
};
const VENDOR = { PXEClient: encodeString('PXEClient'), HTTPClient: encodeString('HTTPClient') };

/** RFC 2131 4.1: to the relay, to a client that has an address, else broadcast. */
function destination(req: DhcpPacket, nak: boolean, from: Arrival): { host: string; port: number } {
  if (req.giaddr !== ZERO) return { host: req.giaddr, port: SERVER_PORT };
  if (from.proxyPort) return { host: from.address, port: from.port };
  if (!nak && req.ciaddr !== ZERO) return { host: req.ciaddr, port: CLIENT_PORT };
  // Without an address the client cannot answer ARP, so it hears us by broadcast whatever its flag says.
  return { host: BROADCAST, port: CLIENT_PORT };
}
