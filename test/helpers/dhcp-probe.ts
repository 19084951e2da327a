// A scriptable DHCP peer for tests, run inside a host namespace: sends
// crafted packets (built with harness/dhcp-packet.ts, written from the RFCs
// apart from the server's codec, or raw hex) and prints every reply it
// hears within the wait as one JSON line. For what udhcpc cannot do:
// relay packets, the PXE :4011 exchange, foreign server ids, garbage.
//   node dhcp-probe.ts '{"bind":{"port":68},"to":{"address":"255.255.255.255","port":67},"packets":[...],"waitMs":1500}'
import dgram from 'node:dgram';
import { bindSocketToDevice } from '../../boot/netif/index.ts';
import { buildPacket, decodeMessage, type ProbePacket } from '../../harness/dhcp-packet.ts';

export interface ProbeRequest {
  bind?: { address?: string; port: number };
  /** Interface the socket is pinned to, so a broadcast leaves without a route (default eth0). */
  iface?: string;
  to: { address: string; port: number };
  packets: ProbePacket[];
  /** The longest wait for replies after sending. */
  waitMs: number;
  /** A pause between one packet and the next (default none). */
  gapMs?: number;
  /** Stop as soon as this many replies arrived (a loaded host answers late; waitMs stays the bound). */
  expect?: number;
  /**
   * Also hear replies to other transactions. By default only replies whose xid
   * is one this probe sent are heard: broadcast replies to other clients on the
   * segment (tests running beside this one) reach port 68 here too.
   */
  anyXid?: boolean;
}

export interface ProbeReply {
  from: { address: string; port: number };
  op: number;
  xid: number;
  flags: number;
  hops: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  file: string;
  /** Option code -> value in hex. */
  options: Record<string, string>;
  /** When it arrived, in ms since the first packet was sent. */
  atMs: number;
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]) as ProbeRequest;
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  let replies = 0;
  let enough: () => void = () => {};
  const gotEnough = new Promise<void>((resolve) => (enough = resolve));
  const sent = req.packets.map(buildPacket);
  const ours = new Set(sent.filter((b) => b.length >= 8).map((b) => b.readUInt32BE(4)));
  let firstSentAt = 0;
  socket.on('message', (buf, rinfo) => {
    const atMs = Math.round(performance.now() - firstSentAt);
    if (!req.anyXid && buf.length >= 8 && !ours.has(buf.readUInt32BE(4))) return;
    if (req.expect !== undefined && ++replies >= req.expect) setImmediate(enough);
    try {
      const p = decodeMessage(buf);
      const reply: ProbeReply = {
        from: { address: rinfo.address, port: rinfo.port },
        op: p.op, xid: p.xid, flags: p.flags, hops: p.hops,
        ciaddr: p.ciaddr, yiaddr: p.yiaddr, siaddr: p.siaddr, giaddr: p.giaddr, file: p.file,
        options: Object.fromEntries(p.options.map(([k, v]) => [String(k), v.toString('hex')])),
        atMs,
      };
      process.stdout.write(JSON.stringify(reply) + '\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ undecodable: (e as Error).message }) + '\n');
    }
  });
  await new Promise<void>((resolve) => socket.bind(req.bind?.port ?? 68, req.bind?.address ?? '0.0.0.0', resolve));
  bindSocketToDevice(socket, req.iface ?? 'eth0');
  socket.setBroadcast(true);
  firstSentAt = performance.now();
  for (const [i, b] of sent.entries()) {
    if (i > 0 && req.gapMs) await new Promise((r) => setTimeout(r, req.gapMs));
    await new Promise<void>((resolve, reject) => socket.send(b, req.to.port, req.to.address, (e) => (e ? reject(e) : resolve())));
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([gotEnough, new Promise((r) => (timer = setTimeout(r, req.waitMs)))]);
  clearTimeout(timer);
  socket.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
