// The checks every request passes before a handler sees it, and what the
// timeline records about the client. Pure.
import { MessageType, messageType } from './codec.ts';
import type { DhcpPacket } from './codec.ts';
import { isIpxe } from './classifier.ts';
import type { BootDecision, ClientFacts } from './classifier.ts';
import type { BootEventKind } from '../timeline.ts';
import { TYPE_NAME } from './handler.ts';

const MAX_HOPS = 16;
const ZERO = '0.0.0.0';

const KIND: Record<number, BootEventKind> = {
  [MessageType.DISCOVER]: 'dhcp.discover',
  [MessageType.REQUEST]: 'dhcp.request',
  [MessageType.DECLINE]: 'dhcp.decline',
  [MessageType.RELEASE]: 'dhcp.release',
  [MessageType.INFORM]: 'dhcp.inform',
};

/** The message type and its timeline kind, or why the packet is not a request we serve. */
export function screen(p: DhcpPacket, from: string): { type: number; kind: BootEventKind } | { ignore: string } {
  if (p.op !== 1) return { ignore: 'not a BOOTREQUEST (op != 1): a server reply reached the server port' };
  if (p.htype !== 1 || p.hlen !== 6) return { ignore: `hardware type ${p.htype} length ${p.hlen}: only Ethernet is served` };
  if (p.hops > MAX_HOPS) return { ignore: `relayed ${p.hops} times (over ${MAX_HOPS}): a relay loop` };
  const type = messageType(p);
  if (type === undefined) return { ignore: 'no DHCP message type (option 53): plain BOOTP is not served' };
  const kind = KIND[type];
  if (kind) return { type, kind };
  if (TYPE_NAME[type]) return { ignore: `a DHCP ${TYPE_NAME[type]} is a server message; another DHCP server may be answering at ${from}` };
  return { ignore: `DHCP message type ${type} is not one a client sends to a server` };
}

export function describeClient(p: DhcpPacket, f: ClientFacts, d: BootDecision, iface: string, bootServer: boolean): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { iface, xid: p.xid.toString(16), class: d.rule };
  if (bootServer) out.bootServer = true;
  if (f.arch !== undefined) out.arch = f.arch;
  if (f.vendorClass) out.vendorClass = f.vendorClass;
  if (f.userClass.length) out.userClass = f.userClass.join(',');
  if (isIpxe(f)) out.ipxe = true;
  if (f.uuid) out.uuid = f.uuid;
  if (p.giaddr !== ZERO) out.relay = p.giaddr;
  if (p.ciaddr !== ZERO) out.ciaddr = p.ciaddr;
  return out;
}
