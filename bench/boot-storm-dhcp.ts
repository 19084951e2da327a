// The DHCP and the TFTP side of bench/boot-storm-client.ts, each on a worker
// thread of its own (workerData.role; TFTP: one socket per transfer, every
// block ACKed at once). DHCP: one
// socket on :68 for every simulated machine (replies come back as
// broadcasts, told apart by xid), the firmware's retransmission schedule,
// and the DISCOVER-to-ACK time of each exchange taken here, on a loop free
// of the downloads, so it is the server's latency and not the wait of the
// client's busy download loop.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { encodeMessage, type DhcpMessage } from '../harness/dhcp-packet.ts';
import { messageType, repliesByXid } from '../harness/dhcp-replies.ts';
import { raiseThreadPriority } from '../lib/thread-priority.ts';

export interface DhcpAnswer {
  ip: string;
  file: string;
  next: string;
  /** DISCOVER to ACK, ms */
  ms: number;
  /** The server's part of it: DISCOVER to OFFER plus REQUEST to ACK (from each first send), without this client's own turn between. */
  serverMs: number;
  retries: number;
}

export interface TftpAnswer {
  bytes: number;
  retries: number;
}

const PXE_VENDOR = Buffer.from('PXEClient:Arch:00000:UNDI:002001');
const ARCH_BIOS = Buffer.from([0, 0]);
const PARAMS = Buffer.from([1, 3, 6, 43, 54, 60, 66, 67, 175]);
const DHCP_WAITS = [4000, 8000, 16000];

/** NAKs after which a machine gives up (firmware starts over from DISCOVER on a NAK, RFC 2131 3.1). */
const NAK_RESTARTS = 3;

class NakError extends Error {
  /** REQUEST to NAK: the server's time, counted too. */
  ms = 0;
}

/** One socket on :68 for every client; replies come back as broadcasts and are told apart by xid. */
class DhcpPort {
  private readonly waiting: Map<number, (m: DhcpMessage) => void>;
  readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    this.waiting = repliesByXid(socket);
  }

  /** Sends `packet` and waits for a reply of `type` to `xid`, retransmitting on the firmware's schedule; `ms` from the first send. */
  async exchange(xid: number, packet: Buffer, type: number, onRetry: () => void): Promise<DhcpMessage & { ms: number }> {
    const t0 = performance.now();
    for (const wait of DHCP_WAITS) {
      const reply = await new Promise<(DhcpMessage & { ms: number }) | undefined>((resolve) => {
        const timer = setTimeout(() => {
          this.waiting.delete(xid);
          resolve(undefined);
        }, wait);
        this.waiting.set(xid, (m) => {
          const at = performance.now();
          const t = messageType(m);
          if (t !== type && t !== 6) return;
          clearTimeout(timer);
          this.waiting.delete(xid);
          resolve(Object.assign(m, { ms: at - t0 }));
        });
        this.socket.send(packet, 67, '255.255.255.255');
      });
      if (reply) {
        if (messageType(reply) === 6) throw Object.assign(new NakError(`DHCP NAK (${NAK_RESTARTS + 1} times)`), { ms: reply.ms });
        return reply;
      }
      onRetry();
    }
    throw new Error(`no DHCP ${type === 2 ? 'OFFER' : 'ACK'} after ${DHCP_WAITS.length} tries`);
  }
}

function option(m: DhcpMessage, code: number): Buffer | undefined {
  return m.options.find(([c]) => c === code)?.[1];
}

function ipOf(b: Buffer | undefined): string | undefined {
  return b && b.length >= 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : undefined;
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** A 4-way exchange as a PXE ROM (ipxe=false) or as iPXE (user class "iPXE"); a NAK starts it over. */
async function dhcp(port: DhcpPort, mac: string, uuid: Buffer, ipxe: boolean): Promise<DhcpAnswer> {
  const r = { retries: 0 };
  const common: [number, Buffer][] = [
    [55, PARAMS],
    [60, PXE_VENDOR],
    ...(ipxe ? ([[77, Buffer.from('iPXE')]] as [number, Buffer][]) : []),
    [93, ARCH_BIOS],
    [97, Buffer.concat([Buffer.from([0]), uuid])],
  ];
  const t0 = performance.now();
  let serverMs = 0;
  for (let naks = 0; ; naks++) {
    const xid = randomBytes(4).readUInt32BE(0);
    try {
      const discover = encodeMessage({ mac, xid, flags: 0x8000, options: [[53, Buffer.from([1])], ...common] });
      const offer = await port.exchange(xid, discover, 2, () => r.retries++);
      serverMs += offer.ms;
      const server = ipOf(option(offer, 54));
      if (!server) throw new Error('OFFER without a server identifier');
      const req = encodeMessage({ mac, xid, flags: 0x8000, options: [[53, Buffer.from([3])], [50, ipBytes(offer.yiaddr)], [54, ipBytes(server)], ...common] });
      const ack = await port.exchange(xid, req, 5, () => r.retries++);
      serverMs += ack.ms;
      const ms = performance.now() - t0;
      const file = option(ack, 67)?.toString('latin1').replace(/\0.*$/s, '') || ack.file;
      const next = ack.siaddr !== '0.0.0.0' ? ack.siaddr : server;
      if (!file) throw new Error('ACK without a boot file');
      return { ip: ack.yiaddr, file, next, ms, serverMs, retries: r.retries };
    } catch (e) {
      if (!(e instanceof NakError) || naks === NAK_RESTARTS) throw e;
      serverMs += e.ms;
      r.retries++;
    }
  }
}

/** RRQ with blksize and tsize; ACKs every block from the leased address. Returns the bytes received. */
function tftpGet(server: string, file: string, local: string, blksize: number, r: { retries: number }): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let peer: RemoteInfo | undefined;
    let size = 512;
    let expect = 1;
    let bytes = 0;
    let last: Buffer = Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\0octet\0blksize\0${blksize}\0tsize\0${0}\0`, 'latin1')]);
    let tries = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.close();
      if (err) reject(err);
      else resolve(bytes);
    };
    const send = () => {
      s.send(last, peer?.port ?? 69, peer?.address ?? server);
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (++tries > 5) return done(new Error(`TFTP ${file}: no answer after ${tries - 1} retransmissions (block ${expect})`));
        r.retries++;
        send();
      }, 2000);
    };
    const ack = (block: number) => {
      last = Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);
      tries = 0;
      send();
    };
    s.on('message', (buf, from) => {
      if (peer && (from.port !== peer.port || from.address !== peer.address)) return;
      peer ??= from;
      const op = buf.readUInt16BE(0);
      if (op === 5) return done(new Error(`TFTP ${file}: error ${buf.readUInt16BE(2)} ${buf.subarray(4).toString('latin1').replace(/\0.*$/s, '')}`));
      if (op === 6) {
        const parts = buf.subarray(2).toString('latin1').split('\0');
        const i = parts.indexOf('blksize');
        if (i >= 0) size = Number(parts[i + 1]);
        return ack(0);
      }
      if (op !== 3) return;
      const block = buf.readUInt16BE(2);
      if (block === (expect & 0xffff)) {
        bytes += buf.length - 4;
        expect++;
        if (buf.length - 4 < size) {
          s.send(Buffer.from([0, 4, buf[2], buf[3]]), peer.port, peer.address, () => done());
          clearTimeout(timer);
          return;
        }
        ack(block);
      }
    });
    s.on('error', (e) => done(e));
    s.bind(0, local, send);
  });
}

async function main(): Promise<void> {
  if ((workerData as { role?: string } | undefined)?.role === 'tftp') {
    parentPort!.on('message', (m: { id: number; tftp: { server: string; file: string; local: string; blksize: number } }) => {
      const r = { retries: 0 };
      const t = m.tftp;
      tftpGet(t.server, t.file, t.local, t.blksize, r).then(
        (bytes) => parentPort!.postMessage({ id: m.id, bytes, retries: r.retries } satisfies TftpAnswer & { id: number }),
        (e: Error) => parentPort!.postMessage({ id: m.id, error: e.message }),
      );
    });
    parentPort!.postMessage('ready');
    return;
  }
  // The machines' DHCP is firmware on CPUs of their own, answering an OFFER at once: this thread runs before
  // the rest of the load generator (and the server's DHCP thread at -10), so that its waits are the server's.
  raiseThreadPriority(-15);
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((res) => socket.bind(68, '0.0.0.0', res));
  socket.setBroadcast(true);
  socket.setRecvBufferSize(8 << 20);
  const port = new DhcpPort(socket);
  parentPort!.on('message', (m: { id: number; mac: string; uuid: string; ipxe: boolean }) => {
    dhcp(port, m.mac, Buffer.from(m.uuid, 'hex'), m.ipxe).then(
      (a) => parentPort!.postMessage({ id: m.id, ...a }),
      (e: Error) => parentPort!.postMessage({ id: m.id, error: e.message }),
    );
  });
  parentPort!.postMessage('ready');
}

if (parentPort) await main();
