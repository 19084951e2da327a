// Many simulated DHCP clients on one host of a test namespace, for the
// tests with several servers on one segment: one socket on :68 for all of
// them (replies are broadcast and told apart by xid), each client a plain
// RFC 2131 INIT -> SELECTING -> REQUESTING walk with retransmissions; a
// client whose chosen server stops answering goes back to INIT and takes
// whatever offer comes next. Client i prefers the i-th server (by option 54)
// among the offers of a short window, so every server gets chosen.
// Prints one JSON line per ACK received ({ ack: mac, ip, server }) and one per
// client done ({ done: mac, ip, server, tries }) or failed ({ failed: mac }).
//   node dhcp-storm-clients.ts <count> <mac-prefix aa:bb:cc:dd> <deadline-ms>
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { encodeMessage, type DhcpMessage } from '../../harness/dhcp-packet.ts';
import { messageType, repliesByXid } from '../../harness/dhcp-replies.ts';

const [count, prefix, deadlineMs] = [Number(process.argv[2]), process.argv[3]!, Number(process.argv[4] ?? 120_000)];
const OFFER_WINDOW_MS = 600;
const WAIT_MS = 1500;

const socket = createSocket({ type: 'udp4', reuseAddr: true });
await new Promise<void>((r) => socket.bind(68, '0.0.0.0', r));
socket.setBroadcast(true);
socket.setRecvBufferSize(8 << 20);
const waiting = repliesByXid(socket);

const serverOf = (m: DhcpMessage) => {
  const b = m.options.find(([c]) => c === 54)?.[1];
  return b ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : '';
};
const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

/** Sends `packet` and collects replies to `xid` for `ms`, or `settleMs` after the first one, or until `enough` says so. */
function ask(xid: number, packet: Buffer, ms: number, enough: (got: DhcpMessage[]) => boolean, settleMs = ms): Promise<DhcpMessage[]> {
  return new Promise((resolve) => {
    const got: DhcpMessage[] = [];
    const finish = () => {
      clearTimeout(timer);
      waiting.delete(xid);
      resolve(got);
    };
    let timer = setTimeout(finish, ms);
    waiting.set(xid, (m) => {
      got.push(m);
      if (enough(got)) return finish();
      if (got.length === 1 && settleMs < ms) {
        clearTimeout(timer);
        timer = setTimeout(finish, settleMs);
      }
    });
    socket.send(packet, 67, '255.255.255.255');
  });
}

async function client(i: number): Promise<void> {
  const mac = `${prefix}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  const end = Date.now() + deadlineMs;
  let tries = 0;
  while (Date.now() < end) {
    tries++;
    const xid = randomBytes(4).readUInt32BE(0);
    const discover = encodeMessage({ mac, xid, flags: 0x8000, options: [[53, Buffer.from([1])]] });
    const offers = await ask(xid, discover, WAIT_MS, (got) => got.length >= 2, OFFER_WINDOW_MS);
    const usable = offers.filter((m) => messageType(m) === 2);
    if (usable.length === 0) continue;
    const servers = [...new Set(usable.map(serverOf))].sort();
    const want = servers[i % servers.length];
    const offer = usable.find((m) => serverOf(m) === want) ?? usable[0]!;
    const request = encodeMessage({ mac, xid, flags: 0x8000, options: [[53, Buffer.from([3])], [50, ipBytes(offer.yiaddr)], [54, ipBytes(serverOf(offer))]] });
    for (let r = 0; r < 2; r++) {
      const decided = (m: DhcpMessage) => messageType(m) === 5 || messageType(m) === 6;
      // A late OFFER from another server carries the same xid: only an ACK or a NAK answers the REQUEST.
      const reply = (await ask(xid, request, WAIT_MS, (got) => got.some(decided))).find(decided);
      if (!reply) continue;
      if (messageType(reply) === 5) {
        out({ ack: mac, ip: reply.yiaddr, server: serverOf(reply) });
        out({ done: mac, ip: reply.yiaddr, server: serverOf(reply), tries });
        return;
      }
      break; // NAK: start over
    }
  }
  out({ failed: mac });
}

// Spread over the first second, as machines powered on together do.
await Promise.all(Array.from({ length: count }, (_, i) => new Promise((r) => setTimeout(r, (i * 1000) / count)).then(() => client(i))));
socket.close();
