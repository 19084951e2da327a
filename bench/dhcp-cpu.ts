// DHCP server CPU per lease without sockets or a second process: perfdhcp's
// packets (relayed, with a client-id, 50,000 clients picked at random) go
// straight into the server's packet handler in rounds of 64 DISCOVERs then
// 64 REQUESTs, and each round waits for its ACKs, which wait for the real
// lease journal's fdatasync. On a shared machine this is steadier than
// bench/dhcp.ts's rates: no peer competes for the cores, and by default the
// send syscall (a fixed cost per reply) is left out, so what it shows is the
// server's own work, collections included. --send batched|dgram sends the
// replies for real, over loopback (root: the sink listens on 127.70.0.2:67)
// through the server's reply sender, with or without the dhcpsend addon; the
// sink reads them on a worker thread whose CPU time is subtracted.
//   node --max-semi-space-size=2 bench/dhcp-cpu.ts [--leases 200000] [--clients 50000] [--send batched|dgram]
import dgram from 'node:dgram';
import type { RemoteInfo } from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { PacketHandler } from '../boot/dhcp/server.ts';
import type { Iface } from '../boot/dhcp/server.ts';
import { LeasePool } from '../boot/dhcp/leases.ts';
import { LeaseFile } from '../boot/dhcp/lease-file.ts';
import { FullHandler } from '../boot/dhcp/full.ts';
import { BootServerHandler } from '../boot/dhcp/boot-server.ts';
import { networkOptions, replyIface } from '../boot/dhcp/reply.ts';
import { loadDhcpSendAddon, ReplySender } from '../boot/dhcp/reply-sender.ts';
import type { ReplyOut } from '../boot/dhcp/reply-sender.ts';
import type { DhcpSettings } from '../boot/dhcp/settings.ts';
import { BootTimeline } from '../boot/timeline.ts';
import { MachineLabels } from '../boot/machine-labels.ts';
import { createSelector } from '../boot/selection.ts';
import { createLogger } from '../boot/log.ts';
import { encodeMessage } from '../harness/dhcp-packet.ts';
import { tempDir } from '../harness/dhcp-server.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const LEASES = Number(arg('leases', '200000'));
const CLIENTS = Number(arg('clients', '50000'));
const SEND = arg('send', '');
const ROUND = 64;
// Loopback addresses when replies are really sent: the relay's is where they go.
const NET = SEND ? '127.70' : '10.70';
const SERVER = `${NET}.0.1`;
const RELAY = `${NET}.0.2`;
const PARAMS = Buffer.from('011c02030f060c', 'hex');

const tmp = await tempDir('zb-bench-dhcp-cpu-');
const pool = { start: `${NET}.1.0`, end: `${NET}.255.254`, subnetMask: '255.255.0.0', leaseSeconds: 3600, dns: [] };
const settings: DhcpSettings = {
  mode: 'full', address: SERVER, interfaces: ['br0'], port: 67, proxyPort: 4011, authoritative: false, pool,
  leasesFile: join(tmp.dir, 'leases.json'), reservations: [], httpBase: `http://${SERVER}:8080`,
};
const leasePool = new LeasePool({ ...pool, exclude: [SERVER] });
const file = await LeaseFile.open(settings.leasesFile, () => leasePool.eachRecord());
const log = createLogger({ level: 'warn' });
const main = new FullHandler({ pool: leasePool, ourIds: new Set([SERVER]), authoritative: false, log });
const handler = new PacketHandler(
  { settings, selector: createSelector([], [], []), labels: new MachineLabels(), timeline: new BootTimeline(), log },
  main, new BootServerHandler(settings.proxyPort), file,
);
const iface: Iface = { reply: replyIface('br0', SERVER, 1500, networkOptions(pool)), facts: { name: 'br0', address: SERVER, servesPool: true } };
const rinfo: RemoteInfo = { address: RELAY, port: 67, family: 'IPv4', size: 300 };

let offered = new Map<number, Buffer>();
let acks = 0;
let awaited = 0;
let wake: (() => void) | undefined;
/** The replies, read back for the REQUESTs and counted: here, or from the sink when they are really sent. */
function heard(b: Buffer): void {
  if (b[242] === 2) offered.set(b.readUInt32BE(4), Buffer.from(b.subarray(16, 20)));
  else ackHeard(1);
}

function ackHeard(n: number): void {
  acks += n;
  if (acks >= awaited && wake) wake();
}

const SINK = `
const dgram = require('node:dgram');
const { parentPort } = require('node:worker_threads');
const s = dgram.createSocket('udp4');
// What the main thread needs, one message per burst: (xid, yiaddr) per OFFER and the ACK count.
let offers = [];
let acks = 0;
const post = () => { parentPort.postMessage({ offers, acks }); offers = []; acks = 0; };
s.on('message', (b) => {
  if (offers.length === 0 && acks === 0) setImmediate(post);
  if (b[242] === 2) offers.push(b.readUInt32BE(4), b.readUInt32BE(16));
  else acks++;
});
s.on('error', (e) => { throw e; });
parentPort.on('message', () => parentPort.postMessage(process.threadCpuUsage()));
s.bind(67, '${RELAY}', () => { s.setRecvBufferSize(8 * 1024 * 1024); parentPort.postMessage('up'); });
`;
let sink: Worker | undefined;
let sender: ReplySender | undefined;
let offersWanted = 0;
let offersWake: (() => void) | undefined;
let sinkCpu = async () => 0;
let socket: ReplyOut = { send: heard };
if (SEND) {
  const out = dgram.createSocket('udp4');
  await new Promise<void>((r) => out.bind(0, SERVER, r));
  const loaded = loadDhcpSendAddon();
  if (SEND === 'batched' && !('addon' in loaded)) throw new Error(`--send batched needs the dhcpsend addon: ${loaded.missing}`);
  socket = sender = new ReplySender(out, SEND === 'batched' && 'addon' in loaded ? loaded.addon : undefined, (e) => console.error(e.message));
  const w = new Worker(SINK, { eval: true });
  sink = w;
  await new Promise((r) => w.once('message', r));
  const isBurst = (m: unknown): m is { offers: number[]; acks: number } => typeof m === 'object' && m !== null && 'offers' in m;
  w.on('message', (m) => {
    if (!isBurst(m)) return;
    for (let i = 0; i < m.offers.length; i += 2) {
      const ip = Buffer.allocUnsafe(4);
      ip.writeUInt32BE(m.offers[i + 1]);
      offered.set(m.offers[i], ip);
    }
    if (offersWake && offered.size >= offersWanted) offersWake();
    if (m.acks) ackHeard(m.acks);
  });
  sinkCpu = () =>
    new Promise<number>((r) => {
      const got = (m: unknown) => {
        if (isBurst(m)) return;
        w.off('message', got);
        const u = m as { user: number; system: number };
        r(u.user + u.system);
      };
      w.on('message', got);
      w.postMessage('cpu');
    });
}

function request(client: number, xid: number, type: number, yiaddr?: Buffer): Buffer {
  const id = [0x00, 0x0c, 0x01, (client >> 16) & 255, (client >> 8) & 255, client & 255];
  const options: [number, Buffer][] = [[53, Buffer.of(type)], [55, PARAMS], [61, Buffer.from([1, ...id])]];
  if (yiaddr) options.push([54, Buffer.from(SERVER.split('.').map(Number))], [50, yiaddr]);
  const mac = id.map((b) => b.toString(16).padStart(2, '0')).join(':');
  return encodeMessage({ mac, xid, hops: 1, giaddr: RELAY, options });
}

/** Real sends arrive later: wait for every OFFER (a lost one only costs its lease, after 5 s). */
async function offersFor(n: number): Promise<void> {
  if (offered.size >= n) return;
  offersWanted = n;
  await new Promise<void>((r) => {
    const timer = setTimeout(r, 5000);
    offersWake = () => {
      clearTimeout(timer);
      r();
    };
  });
  offersWake = undefined;
}

let xid = 1;
async function run(leases: number): Promise<void> {
  for (let done = 0; done < leases; done += ROUND) {
    const clients = Array.from({ length: ROUND }, () => Math.floor(Math.random() * CLIENTS));
    const discovers = clients.map((c) => request(c, xid++, 1));
    offered = new Map();
    for (const d of discovers) handler.receive(socket, d, rinfo, iface, false);
    if (SEND) await offersFor(discovers.length);
    const requests = clients.flatMap((c, i) => {
      const x = discovers[i].readUInt32BE(4);
      const yiaddr = offered.get(x);
      return yiaddr ? [request(c, x, 3, yiaddr)] : [];
    });
    awaited = acks + requests.length;
    for (const r of requests) handler.receive(socket, r, rinfo, iface, false);
    if (acks < awaited) await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
}

try {
  await run(Math.min(40_000, LEASES)); // JIT and a first table, as bench/dhcp.ts warms up
  const before = acks;
  const sink0 = await sinkCpu();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await run(LEASES);
  const used = process.cpuUsage(cpu);
  const sinkUs = (await sinkCpu()) - sink0;
  const n = acks - before;
  const sent = SEND ? `, replies sent (${SEND}); the sink's ${(sinkUs / n).toFixed(1)} us/lease subtracted` : '';
  console.log(
    `${n} leases: server CPU ${((used.user + used.system - sinkUs) / n).toFixed(1)} us/lease ` +
      `(user ${(used.user / n).toFixed(1)}, system ${(used.system / n).toFixed(1)}), wall ${(((performance.now() - t0) * 1000) / n).toFixed(1)} us/lease${sent}`,
  );
} finally {
  sender?.close();
  await sink?.terminate();
  await file.close();
  await tmp.remove();
}
