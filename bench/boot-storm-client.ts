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
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { DhcpAnswer, TftpAnswer } from './boot-storm-dhcp.ts';
import { StormHttpClient } from './storm-http.ts';
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
  /** The server's part of each: DISCOVER to OFFER plus REQUEST to ACK (ms) */
  dhcpServerMs: number[];
  retries: number;
  error?: string;
  startedAt: number;
  endedAt: number;
}

export interface StormResult {
  clients: ClientResult[];
  bytes: number;
  /** The client process's download loop delay (ms): large values mean the generator was the bottleneck. */
  loopMs: { p99: number; max: number };
}

class StageError extends Error {}

/**
 * DHCP and TFTP run on threads of their own (boot-storm-dhcp.ts): their timings
 * are not the wait of this loop, busy with every machine's downloads, and a
 * TFTP ACK is not late because of it (the server abandons a transfer whose
 * client stays silent, as a real ROM with its own CPU never would be).
 */
class DhcpWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: DhcpAnswer | TftpAnswer) => void; reject: (e: Error) => void }>();
  private next = 0;

  /** `role`: 'dhcp' (binds :68) or 'tftp'; each on its own thread, so TFTP's ACKs never delay a DHCP timing. */
  constructor(role: 'dhcp' | 'tftp') {
    this.worker = new Worker(new URL('./boot-storm-dhcp.ts', import.meta.url), { workerData: { role } });
    this.worker.on('message', (m: (DhcpAnswer | TftpAnswer) & { id: number; error?: string }) => {
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
      this.pending.set(id, { resolve: resolve as (a: DhcpAnswer | TftpAnswer) => void, reject });
      this.worker.postMessage({ id, mac, uuid: uuid.toString('hex'), ipxe });
    }).then((a) => {
      r.retries += a.retries;
      r.dhcpMs.push(a.ms);
      r.dhcpServerMs.push(a.serverMs);
      return a;
    });
  }

  /** TFTP of `file` from `server`, from the leased address `local`; the bytes received. */
  tftp(server: string, file: string, local: string, blksize: number, r: ClientResult): Promise<number> {
    const id = this.next++;
    return new Promise<TftpAnswer>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (a: DhcpAnswer | TftpAnswer) => void, reject });
      this.worker.postMessage({ id, tftp: { server, file, local, blksize } });
    }).then((a) => {
      r.retries += a.retries;
      return a.bytes;
    });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

/** GET (or POST) with the download retries of the boot scripts; returns the body's length or text. */
async function http<T extends 'text' | 'count'>(url: string, client: StormHttpClient, want: T, r: ClientResult, body?: string): Promise<T extends 'text' ? string : number> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) {
      r.retries++;
      await new Promise((res) => setTimeout(res, 3000));
    }
    try {
      const a = await client.request(url, want === 'text', body);
      if (a.status >= 300) throw new StageError(`${url}: HTTP ${a.status}`);
      return (want === 'text' ? a.text! : a.bytes) as T extends 'text' ? string : number;
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

function macOf(plan: StormPlan, i: number): string {
  return `02:5a:${plan.macPrefix}:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

async function boot(i: number, plan: StormPlan, port: DhcpWorker, tftp: DhcpWorker, base: { http: string }, reportBody: (mac: string) => Promise<string>, bytes: { n: number }): Promise<ClientResult> {
  const mac = macOf(plan, i);
  const uuid = randomBytes(16);
  const r: ClientResult = { mac, ok: false, stages: {}, dhcpMs: [], dhcpServerMs: [], retries: 0, startedAt: Date.now(), endedAt: 0 };
  let stage: Stage = 'dhcpPxe';
  const timed = async <T>(s: Stage, f: () => Promise<T>): Promise<T> => {
    stage = s;
    const t0 = performance.now();
    const v = await f();
    r.stages[s] = performance.now() - t0;
    return v;
  };
  // iPXE keeps its connection for the downloads of one image; fresh connections per machine.
  let web: StormHttpClient | undefined;
  try {
    const pxe = await timed('dhcpPxe', () => port.exchange(mac, uuid, false, r));
    const add = (n: number) => (bytes.n += n);
    add(await timed('tftp', () => tftp.tftp(pxe.next, pxe.file, pxe.ip, plan.blksize, r)));
    const ipxe = await timed('dhcpIpxe', () => port.exchange(mac, uuid, true, r));
    if (!/^https?:\/\//.test(ipxe.file)) throw new StageError(`iPXE was given ${ipxe.file}, not an http URL`);
    const client = (web = new StormHttpClient({ localAddress: ipxe.ip, max: 4, idleMs: 30_000 }));
    const script = await timed('script', async () => {
      const chain = await http(ipxe.file, client, 'text', r);
      const next = urlsOf(expand(chain, mac, uuid), ['chain'])[0];
      if (!next) throw new StageError(`${ipxe.file} chains nowhere`);
      return http(next, client, 'text', r);
    });
    const [kernel] = urlsOf(script, ['kernel', 'imgfetch']);
    const initrds = urlsOf(script, ['initrd']);
    if (!kernel || initrds.length === 0) throw new StageError('the machine script names no kernel or initrd');
    add(await timed('kernel', () => http(kernel, client, 'count', r)));
    add(
      await timed('initrd', async () => {
      let n = 0;
        for (const u of initrds) n += await http(u, client, 'count', r);
        return n;
      }),
    );
    if (plan.layer) {
      const layer = plan.layer;
      add(
        await timed('layer', async () => {
        let n = await http(`${base.http}/${layer.fl}`, client, 'count', r);
        // `flist unpack` keeps several chunk fetches in flight; four here, one per connection.
        const queue = [...layer.chunks];
        await Promise.all(
          [0, 1, 2, 3].map(async () => {
            for (let c = queue.shift(); c; c = queue.shift()) n += await http(`${base.http}/${c}`, client, 'count', r);
          }),
        );
        return n;
        }),
      );
    }
    if (plan.report) await timed('report', async () => http(`${base.http}${REPORT_PATH}`, client, 'text', r, await reportBody(mac)));
    r.ok = true;
  } catch (e) {
    r.error = `${stage}: ${(e as Error).message}`;
  } finally {
    web?.destroy();
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
  const port = new DhcpWorker('dhcp');
  const tftp = new DhcpWorker('tftp');
  await Promise.all([port.ready(), tftp.ready()]);
  const bytes = { n: 0 };
  // Every machine's signed report is made before the storm (a key, a signature, this host's inventory as
  // JSON): made during it, that work would slow this loop, and so zeroboot's stages, but not the reference's.
  const makeReport = reportMaker();
  const reports = new Map<string, string>();
  if (plan.report) for (let i = 0; i < plan.clients; i++) reports.set(macOf(plan, i), await makeReport(macOf(plan, i)));
  const report = async (mac: string) => reports.get(mac) ?? makeReport(mac);
  const deadline = setTimeout(() => {
    process.stderr.write(`boot-storm client: deadline of ${plan.deadlineMs} ms passed\n`);
    process.exit(3);
  }, plan.deadlineMs);
  const started = Date.now();
  // This loop's own delay: when it is large, the load generator, not the server, sets the pace.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const runs = Array.from({ length: plan.clients }, (_, i) =>
    new Promise<ClientResult>((res) => setTimeout(() => boot(i, plan, port, tftp, { http: plan.httpBase }, report, bytes).then(res), (plan.spreadMs * i) / plan.clients)),
  );
  const clients = await Promise.all(runs);
  clearTimeout(deadline);
  await Promise.all([port.close(), tftp.close()]);
  delay.disable();
  const loopMs = { p99: delay.percentile(99) / 1e6 - 10, max: delay.max / 1e6 - 10 };
  process.stdout.write(JSON.stringify({ clients, bytes: bytes.n, wallMs: Date.now() - started, loopMs } satisfies StormResult & { wallMs: number }) + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
