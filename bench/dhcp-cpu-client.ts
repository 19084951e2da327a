// bench/dhcp-cpu.ts's client: perfdhcp's packets (relayed, with a client-id,
// clients picked at random), and with --sockets the relay itself, on a
// worker thread so that its CPU time can be told apart from the server's.
// Rounds of 64 DISCOVERs, then a REQUEST per OFFER, then wait for the ACKs.
import dgram from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { encodeMessage } from '../harness/dhcp-packet.ts';

export const ROUND = 64;
const PARAMS = Buffer.from('011c02030f060c', 'hex');

export function request(client: number, xid: number, type: number, relay: string, server: string, yiaddr?: Buffer): Buffer {
  const id = [0x00, 0x0c, 0x01, (client >> 16) & 255, (client >> 8) & 255, client & 255];
  const options: [number, Buffer][] = [[53, Buffer.of(type)], [55, PARAMS], [61, Buffer.from([1, ...id])]];
  if (yiaddr) options.push([54, Buffer.from(server.split('.').map(Number))], [50, yiaddr]);
  const mac = id.map((b) => b.toString(16).padStart(2, '0')).join(':');
  return encodeMessage({ mac, xid, hops: 1, giaddr: relay, options });
}

export interface ClientJob {
  relay: string;
  server: string;
  clients: number;
  warmup: number;
  leases: number;
}

/** The relay over loopback: warm-up, then tells the server thread it starts, runs `leases`, and reports its own CPU time. */
async function relay(job: ClientJob): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(67, job.relay, r));
  s.setRecvBufferSize(8 * 1024 * 1024);
  let offered = new Map<number, Buffer>();
  let acks = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  s.on('message', (b) => {
    if (b[242] === 2) offered.set(b.readUInt32BE(4), Buffer.from(b.subarray(16, 20)));
    else acks++;
    if (wake && (b[242] === 2 ? offered.size : acks) >= want) wake();
  });
  const until = (n: number, count: () => number) =>
    count() >= n
      ? Promise.resolve()
      : new Promise<void>((r) => {
          want = n;
          // A lost reply only costs its lease, after a second.
          const timer = setTimeout(r, 1000);
          wake = () => {
            clearTimeout(timer);
            wake = undefined;
            r();
          };
        });
  let xid = 1;
  const run = async (leases: number) => {
    for (let done = 0; done < leases; done += ROUND) {
      const clients = Array.from({ length: ROUND }, () => Math.floor(Math.random() * job.clients));
      const discovers = clients.map((c) => request(c, xid++, 1, job.relay, job.server));
      offered = new Map();
      for (const d of discovers) s.send(d, 67, job.server);
      await until(discovers.length, () => offered.size);
      const requests = clients.flatMap((c, i) => {
        const x = discovers[i]!.readUInt32BE(4);
        const yiaddr = offered.get(x);
        return yiaddr ? [request(c, x, 3, job.relay, job.server, yiaddr)] : [];
      });
      const target = acks + requests.length;
      for (const r of requests) s.send(r, 67, job.server);
      await until(target, () => acks);
    }
  };
  await run(job.warmup);
  parentPort!.postMessage({ start: true });
  const before = acks;
  const cpu = process.threadCpuUsage();
  await run(job.leases);
  const used = process.threadCpuUsage(cpu);
  s.close();
  parentPort!.postMessage({ acks: acks - before, cpuUs: used.user + used.system });
}

if (parentPort && (workerData as { job?: ClientJob } | undefined)?.job) await relay((workerData as { job: ClientJob }).job);
