// DHCP server CPU per lease without sockets or a second process: perfdhcp's
// packets (relayed, with a client-id, 50,000 clients picked at random) go
// straight into the server's packet handler in rounds of 64 DISCOVERs then
// 64 REQUESTs, and each round waits for its ACKs, which wait for the real
// lease journal's fdatasync. On a shared machine this is steadier than
// bench/dhcp.ts's rates: no peer competes for the cores, and the send
// syscall (a fixed cost per reply) is left out, so what it shows is the
// server's own work, collections included.
//   node --max-semi-space-size=2 bench/dhcp-cpu.ts [--leases 200000] [--clients 50000]
import type { RemoteInfo, Socket } from 'node:dgram';
import { join } from 'node:path';
import { PacketHandler } from '../boot/dhcp/server.ts';
import type { Iface } from '../boot/dhcp/server.ts';
import { LeasePool } from '../boot/dhcp/leases.ts';
import { LeaseFile } from '../boot/dhcp/lease-file.ts';
import { FullHandler } from '../boot/dhcp/full.ts';
import { BootServerHandler } from '../boot/dhcp/boot-server.ts';
import { networkOptions, replyIface } from '../boot/dhcp/reply.ts';
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
const ROUND = 64;
const SERVER = '10.70.0.1';
const RELAY = '10.70.0.2';
const PARAMS = Buffer.from('011c02030f060c', 'hex');

const tmp = await tempDir('zb-bench-dhcp-cpu-');
const pool = { start: '10.70.1.0', end: '10.70.255.254', subnetMask: '255.255.0.0', leaseSeconds: 3600, dns: [] };
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
// Only what the bench needs of a socket: the replies, read back for the REQUESTs and counted.
const socket = {
  send(b: Buffer) {
    if (b[242] === 2) offered.set(b.readUInt32BE(4), Buffer.from(b.subarray(16, 20)));
    else if (++acks >= awaited && wake) wake();
  },
} as unknown as Socket;

function request(client: number, xid: number, type: number, yiaddr?: Buffer): Buffer {
  const id = [0x00, 0x0c, 0x01, (client >> 16) & 255, (client >> 8) & 255, client & 255];
  const options: [number, Buffer][] = [[53, Buffer.of(type)], [55, PARAMS], [61, Buffer.from([1, ...id])]];
  if (yiaddr) options.push([54, Buffer.from([10, 70, 0, 1])], [50, yiaddr]);
  const mac = id.map((b) => b.toString(16).padStart(2, '0')).join(':');
  return encodeMessage({ mac, xid, hops: 1, giaddr: RELAY, options });
}

let xid = 1;
async function run(leases: number): Promise<void> {
  for (let done = 0; done < leases; done += ROUND) {
    const clients = Array.from({ length: ROUND }, () => Math.floor(Math.random() * CLIENTS));
    const discovers = clients.map((c) => request(c, xid++, 1));
    offered = new Map();
    for (const d of discovers) handler.receive(socket, d, rinfo, iface, false);
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
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await run(LEASES);
  const used = process.cpuUsage(cpu);
  const n = acks - before;
  console.log(
    `${n} leases: server CPU ${((used.user + used.system) / n).toFixed(1)} us/lease ` +
      `(user ${(used.user / n).toFixed(1)}, system ${(used.system / n).toFixed(1)}), wall ${(((performance.now() - t0) * 1000) / n).toFixed(1)} us/lease`,
  );
} finally {
  await file.close();
  await tmp.remove();
}
