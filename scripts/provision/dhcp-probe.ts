// Is another DHCP server answering on the farm's segment? A real DISCOVER,
// broadcast from port 68 on the interface (with a locally administered MAC
// made from the interface's, so no real client's lease is touched), and
// every OFFER heard within the wait. Offers from this host (our own server
// on a second run) do not count.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { decodeDhcp, encodeDhcp, messageType, MessageType } from '../../boot/dhcp/codec.ts';
import { Opt, optIp, optString } from '../../boot/dhcp/options.ts';
import { bindSocketToDevice } from '../../boot/netif/index.ts';
import { ProvisionError } from './exit-codes.ts';
import type { FarmInterface } from './host-checks.ts';

export interface DhcpOffer {
  /** The answering server: its server id (option 54), else the packet's source. */
  server: string;
  from: string;
  yiaddr: string;
  /** BOOTP next-server: where its clients fetch boot files (GRUB of the signed chain asks it). */
  siaddr: string;
  file: string;
  router?: string;
  tftpServer?: string;
}

/** The probe's client MAC: the interface's, with the locally administered bit set. */
export function probeMac(ifaceMac: string): Buffer {
  const b = Buffer.from(ifaceMac.replace(/[^0-9a-f]/gi, '').padEnd(12, '0'), 'hex');
  b[0] = (b[0] | 0x02) & 0xfe;
  return b;
}

export function discoverPacket(mac: Buffer, xid: number): Buffer {
  const chaddr = Buffer.alloc(16);
  mac.copy(chaddr);
  return encodeDhcp({
    op: 1, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr, sname: '', file: '',
    options: new Map([
      [Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER])],
      [Opt.PARAM_LIST, Buffer.from([Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.TFTP_SERVER, Opt.BOOTFILE])],
    ]),
  });
}

/** The OFFER in a datagram answering `xid`, or undefined for anything else (garbage included). */
export function offerOf(buf: Buffer, from: string, xid: number): DhcpOffer | undefined {
  let p;
  try {
    p = decodeDhcp(buf, true);
  } catch {
    return undefined;
  }
  if (p.op !== 2 || p.xid !== xid || messageType(p) !== MessageType.OFFER) return undefined;
  const router = optIp(p, Opt.ROUTER);
  const tftpServer = optString(p, Opt.TFTP_SERVER);
  return { server: optIp(p, Opt.SERVER_ID) ?? from, from, yiaddr: p.yiaddr, siaddr: p.siaddr, file: p.file, ...(router ? { router } : {}), ...(tftpServer ? { tftpServer } : {}) };
}

/** Sends DISCOVERs (one now, one halfway) and returns the other servers' offers heard within `waitMs`. */
export async function probeDhcp(iface: FarmInterface, waitMs = 3000): Promise<DhcpOffer[]> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const xid = randomBytes(4).readUInt32BE();
  const offers = new Map<string, DhcpOffer>();
  socket.on('message', (buf, rinfo) => {
    const o = offerOf(buf, rinfo.address, xid);
    if (o && o.server !== iface.address && o.from !== iface.address && !offers.has(o.server)) offers.set(o.server, o);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(68, '0.0.0.0', () => (socket.off('error', reject), resolve()));
    });
    bindSocketToDevice(socket, iface.name);
    socket.setBroadcast(true);
    const packet = discoverPacket(probeMac(iface.mac), xid);
    const send = () => new Promise<void>((resolve, reject) => socket.send(packet, 67, '255.255.255.255', (e) => (e ? reject(e) : resolve())));
    await send();
    await new Promise((r) => setTimeout(r, waitMs / 2));
    // A second DISCOVER, as a client retries: a server busy at the first still answers.
    await send();
    await new Promise((r) => setTimeout(r, waitMs / 2));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? 'port 68 is held by a DHCP client on this host (stop it, or pass --dhcp proxy|full to skip the probe)'
      : err.code === 'EACCES' ? 'binding port 68 needs root (or CAP_NET_BIND_SERVICE)' : err.message;
    throw new ProvisionError('probeFailed', `cannot probe for DHCP servers on ${iface.name}: ${why}`);
  } finally {
    socket.close();
  }
  return [...offers.values()];
}

/**
 * What the other server must send for zeroboot's proxy mode to boot every
 * node: itself, only addresses; for the signed chain (Secure Boot nodes,
 * whose GRUB takes its TFTP server from the address server's ACK) also
 * next-server = this host. Reservations with an address go there too.
 */
export function proxyAdvice(offers: DhcpOffer[], address: string, reserved: { mac: string; ip: string }[]): string[] {
  const lines: string[] = [];
  for (const o of offers) {
    lines.push(`another DHCP server answers: ${o.server} (offered ${o.yiaddr}${o.router ? `, router ${o.router}` : ''}, next-server ${o.siaddr})`);
    if (o.siaddr === address) lines.push(`  it already names this host (${address}) as next-server: Secure Boot nodes will find GRUB's configuration`);
    else lines.push(`  for Secure Boot nodes (shim -> GRUB) it must send next-server ${address} (BOOTP siaddr): dnsmasq dhcp-boot=,,${address}; ISC dhcpd or Kea next-server ${address}; many routers call it "TFTP server"`);
  }
  lines.push('zeroboot answers in proxy mode: the other server keeps handing out addresses, zeroboot adds only the boot options');
  if (reserved.length > 0) {
    lines.push('the CSV reserves addresses; in proxy mode the other server hands them out, so reserve them there:');
    for (const r of reserved) lines.push(`  ${r.mac} -> ${r.ip}`);
  }
  return lines;
}
