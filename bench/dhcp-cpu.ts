// DHCP server CPU per lease in one process: perfdhcp's packets (relayed,
// with a client-id, 50,000 clients picked at random; dhcp-cpu-client.ts) in
// rounds of 64 DISCOVERs then 64 REQUESTs, each round waiting for its ACKs,
// which wait for the real lease journal's fdatasync. On a shared machine
// this is steadier than bench/dhcp.ts's rates: no second process competes
// for the cores.
// By default the packets go straight into the server's packet handler and
// the replies are only read back: no socket at all, so what it shows is the
// server's own work, collections included. --sockets batched|dgram runs the
// server on a real socket (127.70.0.1:67, so root; the relay is a worker
// thread at 127.70.0.2:67 whose CPU time is subtracted), reading and sending
// in batches through the dhcpio addon or one datagram at a time via dgram.
//   node --max-semi-space-size=2 bench/dhcp-cpu.ts [--leases 200000] [--clients 50000] [--sockets batched|dgram]
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
import { ReplySender } from '../boot/dhcp/reply-sender.ts';
import type { ReplyOut } from '../boot/dhcp/reply-sender.ts';
import { BatchReceiver } from '../boot/dhcp/batch-receiver.ts';
import { loadDhcpIoAddon } from '../boot/dhcp/io-addon.ts';
import type { DhcpSettings } from '../boot/dhcp/settings.ts';
import { BootTimeline } from '../boot/timeline.ts';
import { MachineLabels } from '../boot/machine-labels.ts';
import { createSelector } from '../boot/selection.ts';
import { createLogger } from '../boot/log.ts';
import { tempDir } from '../harness/dhcp-server.ts';
import { request, ROUND } from './dhcp-cpu-client.ts';
import type { ClientJob } from './dhcp-cpu-client.ts';
import { oneOf, parseBenchArgs, positiveInt } from '../harness/bench-args.ts';

const SCRIPT = 'bench/dhcp-cpu.ts';
const { values: a } = parseBenchArgs(SCRIPT, {
  options: { leases: { type: 'string', default: '200000' }, clients: { type: 'string', default: '50000' }, sockets: { type: 'string', default: '' } },
});
const LEASES = positiveInt(SCRIPT, 'leases', a.leases);
const CLIENTS = positiveInt(SCRIPT, 'clients', a.clients);
const SOCKETS = oneOf(SCRIPT, 'sockets', a.sockets, ['', 'batched', 'dgram']);
const WARMUP = Math.min(40_000, LEASES); // JIT and a first table, as bench/dhcp.ts warms up
// Loopback addresses when the packets travel for real.
const NET = SOCKETS ? '127.70' : '10.70';
const SERVER = `${NET}.0.1`;
const RELAY = `${NET}.0.2`;

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

/** No sockets: the client's rounds in this thread, replies read back from the handler's sends. */
async function inProcess(): Promise<{ n: number; cpuUs: number; user: number; system: number }> {
  const rinfo: RemoteInfo = { address: RELAY, port: 67, family: 'IPv4', size: 300 };
  let offered = new Map<number, Buffer>();
  let acks = 0;
  let awaited = 0;
  let wake: (() => void) | undefined;
  const replies: ReplyOut = {
    send(b: Buffer) {
      if (b[242] === 2) offered.set(b.readUInt32BE(4), Buffer.from(b.subarray(16, 20)));
      else if (++acks >= awaited && wake) wake();
    },
  };
  let xid = 1;
  const run = async (leases: number) => {
    for (let done = 0; done < leases; done += ROUND) {
      const clients = Array.from({ length: ROUND }, () => Math.floor(Math.random() * CLIENTS));
      const discovers = clients.map((c) => request(c, xid++, 1, RELAY, SERVER));
      offered = new Map();
      for (const d of discovers) handler.receive(replies, d, rinfo, iface, false);
      const requests = clients.flatMap((c, i) => {
        const x = discovers[i]!.readUInt32BE(4);
        const yiaddr = offered.get(x);
        return yiaddr ? [request(c, x, 3, RELAY, SERVER, yiaddr)] : [];
      });
      awaited = acks + requests.length;
      for (const r of requests) handler.receive(replies, r, rinfo, iface, false);
      if (acks < awaited) await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  };
  await run(WARMUP);
  const before = acks;
  const cpu = process.cpuUsage();
  await run(LEASES);
  const used = process.cpuUsage(cpu);
  return { n: acks - before, cpuUs: used.user + used.system, user: used.user, system: used.system };
}

/** The server on a real socket; the relay on a worker thread, its CPU time taken out. */
async function overSockets(batched: boolean): Promise<{ n: number; cpuUs: number; user: number; system: number }> {
  const loaded = loadDhcpIoAddon();
  if (batched && !('addon' in loaded)) throw new Error(`--sockets batched needs the dhcpio addon: ${loaded.missing}`);
  const addon = batched && 'addon' in loaded ? loaded.addon : undefined;
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(67, SERVER, r));
  socket.setRecvBufferSize(8 * 1024 * 1024);
  const sender = new ReplySender(socket, addon, (e) => console.error(e.message));
  const receiver = new BatchReceiver(socket, addon, (buf, from) => handler.receive(sender, buf, from, iface, false));
  const job: ClientJob = { relay: RELAY, server: SERVER, clients: CLIENTS, warmup: WARMUP, leases: LEASES };
  const worker = new Worker(new URL('./dhcp-cpu-client.ts', import.meta.url), { workerData: { job } });
  let cpu = process.cpuUsage();
  const result = await new Promise<{ acks: number; cpuUs: number }>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (m: { start?: boolean; acks?: number; cpuUs?: number }) => {
      if (m.start) cpu = process.cpuUsage();
      else resolve(m as { acks: number; cpuUs: number });
    });
  });
  const used = process.cpuUsage(cpu);
  await worker.terminate();
  receiver.stop();
  sender.close();
  return { n: result.acks, cpuUs: used.user + used.system - result.cpuUs, user: used.user, system: used.system };
}

try {
  const r = SOCKETS ? await overSockets(SOCKETS === 'batched') : await inProcess();
  const how = SOCKETS ? `, over loopback sockets (${SOCKETS}), the relay thread's CPU taken out` : ', no sockets';
  console.log(
    `${r.n} leases: server CPU ${(r.cpuUs / r.n).toFixed(1)} us/lease (process user ${(r.user / r.n).toFixed(1)}, system ${(r.system / r.n).toFixed(1)})${how}`,
  );
} finally {
  await file.close();
  await tmp.remove();
}
