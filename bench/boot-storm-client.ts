// The simulated PXE clients of bench/boot-storm.ts, run inside the clients'
// namespace: N machines that power on together and each go through what a
// real node's boot asks of the server, in order:
//   DHCP as a PXE ROM -> TFTP of the boot program -> DHCP as iPXE ->
//   the chain script -> the machine's script -> kernel -> initrd ->
//   an `at: boot` layer (.fl and its chunks) -> a signed report.
// Every client uses its leased address for everything after DHCP (the
// namespace has a local route over the pool, so any pool address can be
// bound), so the server's per-address limits see N machines, not one.
// Retries follow the firmware: DHCP 4, 8, 16 s; a TFTP packet 5 times; a
// download 3 times (the zeroboot scripts' DOWNLOAD_ATTEMPTS).
// Input: one JSON argument (StormPlan); output: one JSON line (StormResult).
import { createSocket, type RemoteInfo } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';
import type { DhcpAnswer } from './boot-storm-dhcp.ts';
import { REPORT_PATH } from '../lib/signed-report.ts';
import { buildReport, signReport } from '../agent/report.ts';
import { loadOrCreateIdentity } from '../agent/identity.ts';
import { collectInventory } from '../agent/inventory/index.ts';
import { capacity } from '../agent/inventory/capacity.ts';

export interface StormPlan {
  clients: number;
  /** second and third bytes of every client's MAC, so two runs do not share MACs */
  macPrefix: string;
  /** clients power on spread evenly over this many ms */
  spreadMs: number;
  /** TFTP blksize the ROM asks for */
  blksize: number;
  /** the layer's .fl path and chunk paths on the HTTP server, relative to its root */
  layer?: { fl: string; chunks: string[] };
  /** send a signed report at the end (zeroboot only: the reference has no registry) */
  report: boolean;
  /** give up on the whole storm after this long */
  deadlineMs: number;
}

export type Stage = 'dhcpPxe' | 'tftp' | 'dhcpIpxe' | 'script' | 'kernel' | 'initrd' | 'layer' | 'report';
export const STAGES: Stage[] = ['dhcpPxe', 'tftp', 'dhcpIpxe', 'script', 'kernel', 'initrd', 'layer', 'report'];

export interface ClientResult {
  mac: string;
  ok: boolean;
  /** stage -> ms taken (from its first attempt) */
  stages: Partial<Record<Stage, number>>;
  /** DISCOVER-to-ACK time of each successful DHCP exchange (ms) */
  dhcpMs: number[];
  retries: number;
  error?: string;
  startedAt: number;
  endedAt: number;
}

export interface StormResult {
  clients: ClientResult[];
  bytes: number;
}

class StageError extends Error {}

/** The DHCP side runs on its own thread (boot-storm-dhcp.ts), so its timings are not the wait of this busy loop. */
class DhcpWorker {
  private readonly worker = new Worker(new URL('./boot-storm-dhcp.ts', import.meta.url));
  private readonly pending = new Map<number, { resolve: (r: DhcpAnswer) => void; reject: (e: Error) => void }>();
  private next = 0;

  constructor() {
    this.worker.on('message', (m: DhcpAnswer & { id: number; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new StageError(m.error));
      else p?.resolve(m);
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.worker.once('message', () => resolve()));
  }

  exchange(mac: string, uuid: Buffer, ipxe: boolean, r: ClientResult): Promise<DhcpAnswer> {
    const id = this.next++;
    return new Promise<DhcpAnswer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, mac, uuid: uuid.toString('hex'), ipxe });
    }).then((a) => {
      r.retries += a.retries;
      r.dhcpMs.push(a.ms);
      return a;
    });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

/** RRQ with blksize and tsize; ACKs every block from the leased address. Returns the bytes received. */
function tftpGet(server: string, file: string, local: string, blksize: number, r: ClientResult): Promise<number> {
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
        if (++tries > 5) return done(new StageError(`TFTP ${file}: no answer after ${tries - 1} retransmissions (block ${expect})`));
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
      if (op === 5) return done(new StageError(`TFTP ${file}: error ${buf.readUInt16BE(2)} ${buf.subarray(4).toString('latin1').replace(/\0.*$/s, '')}`));
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

/** GET (or POST) with the download retries of the boot scripts; returns the body's length or text. */
async function http<T extends 'text' | 'count'>(url: string, local: string, agent: Agent, want: T, r: ClientResult, body?: string): Promise<T extends 'text' ? string : number> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) {
      r.retries++;
      await new Promise((res) => setTimeout(res, 3000));
    }
    try {
      return await new Promise((resolve, reject) => {
        const req = request(url, { method: body ? 'POST' : 'GET', localAddress: local, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
          const chunks: Buffer[] = [];
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (want === 'text') chunks.push(c);
          });
          res.on('end', () => {
            if ((res.statusCode ?? 0) >= 300) reject(new StageError(`${url}: HTTP ${res.statusCode}`));
            else resolve((want === 'text' ? Buffer.concat(chunks).toString() : n) as T extends 'text' ? string : number);
          });
          res.on('error', reject);
        });
        req.setTimeout(30_000, () => req.destroy(new StageError(`${url}: no progress for 30 s`)));
        req.on('error', reject);
        req.end(body);
      });
    } catch (e) {
      lastError = (e as Error).message;
    }
  }
  throw new StageError(`${url}: ${lastError} (3 attempts)`);
}

/** What iPXE would expand in the chain script's URL, for a BIOS machine. */
function expand(text: string, mac: string, uuid: Buffer): string {
  const u = uuid.toString('hex');
  const values: Record<string, string> = {
    'netX/mac:hexhyp': mac.replace(/:/g, '-'),
    'net0/mac:hexhyp': mac.replace(/:/g, '-'),
    'netX/mac': mac,
    'net0/mac': mac,
    uuid: `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}`,
    buildarch: 'i386',
    platform: 'pcbios',
  };
  return text.replace(/\$\{([^}]+)\}/g, (_, k: string) => values[k] ?? '');
}

/** The URLs of a script's `chain`, `kernel`/`imgfetch` or `initrd` commands (options skipped), each once: the scripts repeat a command as its retries. */
function urlsOf(script: string, commands: string[]): string[] {
  const out: string[] = [];
  for (const line of script.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (!commands.includes(words[0])) continue;
    const url = words.slice(1).find((w) => /^https?:\/\//.test(w));
    if (url && !out.includes(url)) out.push(url);
  }
  return out;
}

async function boot(i: number, plan: StormPlan, port: DhcpWorker, base: { http: string }, reportBody: (mac: string) => Promise<string>, bytes: { n: number }): Promise<ClientResult> {
  const mac = `02:5a:${plan.macPrefix}:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  const uuid = randomBytes(16);
  const r: ClientResult = { mac, ok: false, stages: {}, dhcpMs: [], retries: 0, startedAt: Date.now(), endedAt: 0 };
  let stage: Stage = 'dhcpPxe';
  const timed = async <T>(s: Stage, f: () => Promise<T>): Promise<T> => {
    stage = s;
    const t0 = performance.now();
    const v = await f();
    r.stages[s] = performance.now() - t0;
    return v;
  };
  // iPXE keeps its connection for the downloads of one image; a fresh agent per machine.
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const pxe = await timed('dhcpPxe', () => port.exchange(mac, uuid, false, r));
    const add = (n: number) => (bytes.n += n);
    add(await timed('tftp', () => tftpGet(pxe.next, pxe.file, pxe.ip, plan.blksize, r)));
    const ipxe = await timed('dhcpIpxe', () => port.exchange(mac, uuid, true, r));
    if (!/^https?:\/\//.test(ipxe.file)) throw new StageError(`iPXE was given ${ipxe.file}, not an http URL`);
    const script = await timed('script', async () => {
      const chain = await http(ipxe.file, ipxe.ip, agent, 'text', r);
      const next = urlsOf(expand(chain, mac, uuid), ['chain'])[0];
      if (!next) throw new StageError(`${ipxe.file} chains nowhere`);
      return http(next, ipxe.ip, agent, 'text', r);
    });
    const [kernel] = urlsOf(script, ['kernel', 'imgfetch']);
    const initrds = urlsOf(script, ['initrd']);
    if (!kernel || initrds.length === 0) throw new StageError('the machine script names no kernel or initrd');
    add(await timed('kernel', () => http(kernel, ipxe.ip, agent, 'count', r)));
    add(
      await timed('initrd', async () => {
      let n = 0;
        for (const u of initrds) n += await http(u, ipxe.ip, agent, 'count', r);
        return n;
      }),
    );
    if (plan.layer) {
      const layer = plan.layer;
      add(
        await timed('layer', async () => {
        let n = await http(`${base.http}/${layer.fl}`, ipxe.ip, agent, 'count', r);
        // `flist unpack` keeps several chunk fetches in flight; four here, one per socket of the agent.
        const queue = [...layer.chunks];
        await Promise.all(
          [0, 1, 2, 3].map(async () => {
            for (let c = queue.shift(); c; c = queue.shift()) n += await http(`${base.http}/${c}`, ipxe.ip, agent, 'count', r);
          }),
        );
        return n;
        }),
      );
    }
    if (plan.report) await timed('report', async () => http(`${base.http}${REPORT_PATH}`, ipxe.ip, agent, 'text', r, await reportBody(mac)));
    r.ok = true;
  } catch (e) {
    r.error = `${stage}: ${(e as Error).message}`;
  } finally {
    agent.destroy();
    r.endedAt = Date.now();
  }
  return r;
}

/**
 * A signed report as a diskless node sends it, made by the agent's own
 * report code: this host's inventory, a fresh in-memory key per machine.
 */
function reportMaker(): (mac: string) => Promise<string> {
  const inventory = collectInventory();
  const cap = capacity(inventory.cpu.logical, inventory.memoryBytes, []);
  return async (mac: string) => {
    const { identity } = await loadOrCreateIdentity([]);
    return JSON.stringify(signReport(buildReport({ identity, inventory, capacity: cap, disks: [], zdbs: [], bootMac: mac, runmode: 'dev' }), identity));
  };
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2]) as StormPlan & { httpBase: string };
  const port = new DhcpWorker();
  await port.ready();
  const bytes = { n: 0 };
  const report = reportMaker();
  const deadline = setTimeout(() => {
    process.stderr.write(`boot-storm client: deadline of ${plan.deadlineMs} ms passed\n`);
    process.exit(3);
  }, plan.deadlineMs);
  const started = Date.now();
  const runs = Array.from({ length: plan.clients }, (_, i) =>
    new Promise<ClientResult>((res) => setTimeout(() => boot(i, plan, port, { http: plan.httpBase }, report, bytes).then(res), (plan.spreadMs * i) / plan.clients)),
  );
  const clients = await Promise.all(runs);
  clearTimeout(deadline);
  await port.close();
  process.stdout.write(JSON.stringify({ clients, bytes: bytes.n, wallMs: Date.now() - started } satisfies StormResult & { wallMs: number }) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
