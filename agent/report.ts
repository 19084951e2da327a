// The node's report: what it is and what it runs, signed with its key, sent
// to the boot server with retries (exponential backoff with full jitter, so
// a rack that booted together does not retry in step).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { REPORT_PATH, signPayload, type SignedEnvelope } from '../lib/signed-report.ts';
import { postJson } from './http-post.ts';
import type { Capacity } from './inventory/capacity.ts';
import type { Inventory } from './inventory/types.ts';
import type { Identity } from './identity.ts';

export const REPORT_VERSION = 1;

export interface ZdbHealth {
  disk: string;
  port: number;
  socket: string;
  healthy: boolean;
  restarts: number;
  /** How the last process ended (`exited SIGKILL`, `exited with code 1: <last stderr line>`). */
  lastExit?: string;
  /** The last failed health check, cleared by a good one. */
  lastError?: string;
}

/** The agent process's own footprint (issue 12's goal: RSS under 80 MB, idle CPU under 1%), readable off any node's report. */
export interface AgentUsage {
  rssBytes: number;
  /** The highest RSS since the agent started (bring-up included). */
  peakRssBytes: number;
  /** User + system CPU time since start: idle CPU is its growth between two reports over theirs of uptimeSeconds. */
  cpuSeconds: number;
  uptimeSeconds: number;
}

/**
 * VmHWM from /proc/self/status, not getrusage's ru_maxrss: the kernel keeps
 * that across exec, so it counts the peak of whichever process forked us
 * (148 MB for the benchmark's child, whose own peak was 62 MB).
 */
function peakRss(): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

export function agentUsage(): AgentUsage {
  const cpu = process.cpuUsage();
  const rss = process.memoryUsage.rss();
  return {
    rssBytes: rss,
    peakRssBytes: peakRss() ?? rss,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    uptimeSeconds: Math.round(process.uptime() * 1000) / 1000,
  };
}

export interface ReportInput {
  identity: Identity;
  inventory: Inventory;
  capacity: Capacity;
  /** Per disk: state, reason, label, type... as the disk module reports them. */
  disks: Record<string, unknown>[];
  zdbs: ZdbHealth[];
  bootMac?: string;
  farmerId?: number;
  runmode: string;
  agent?: AgentUsage;
}

export interface ReportPayload extends Record<string, unknown> {
  version: number;
  nodeId: string;
  /** The MAC the server binds the key to: the boot NIC, else the first NIC backed by a device. */
  mac: string;
  diskless: boolean;
  timestamp: number;
  nonce: string;
}

export class ReportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportError';
  }
}

/** The server said no (4xx): retrying the same report cannot help. */
export class ReportRejectedError extends ReportError {
  readonly status: number;
  constructor(status: number, reason: string) {
    super(`the server rejected the report (${status}): ${reason}`);
    this.status = status;
  }
}

export function bindingMac(inv: Inventory, bootMac: string | undefined): string {
  const mac = bootMac ?? inv.nics.find((n) => n.physical)?.mac;
  if (!mac) throw new ReportError('the node has no NIC backed by a device and no BOOTIF: nothing to bind its identity to');
  return mac;
}

export function buildReport(input: ReportInput, now = Date.now(), nonce = randomBytes(16).toString('hex')): ReportPayload {
  const { identity, inventory } = input;
  return {
    version: REPORT_VERSION,
    nodeId: identity.nodeId,
    mac: bindingMac(inventory, input.bootMac),
    diskless: identity.diskless,
    timestamp: now,
    nonce,
    runmode: input.runmode,
    ...(input.farmerId !== undefined ? { farmerId: input.farmerId } : {}),
    ...(input.bootMac ? { bootMac: input.bootMac } : {}),
    inventory: inventory as unknown as Record<string, unknown>,
    capacity: input.capacity as unknown as Record<string, unknown>,
    disks: input.disks,
    zdbs: input.zdbs,
    ...(input.agent ? { agent: input.agent as unknown as Record<string, unknown> } : {}),
  };
}

export function signReport(payload: ReportPayload, identity: Identity): SignedEnvelope {
  return signPayload(payload, identity.privateKey);
}

export interface SendOptions {
  attempts?: number;
  /** First backoff ceiling; doubles per attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * POSTs the report made by `make()` (called again for every attempt: each
 * carries a fresh timestamp and nonce) until the server accepts it. Retries
 * on network errors, 5xx and 429; a 4xx rejection ends at once.
 */
export async function sendReport(server: string, make: () => SignedEnvelope, opts: SendOptions = {}): Promise<{ attempts: number; response: unknown }> {
  const attempts = opts.attempts ?? 8;
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 30_000;
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? defaultSleep;
  let last = '';
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await postJson(`${server}${REPORT_PATH}`, JSON.stringify(make()), opts.timeoutMs ?? 10_000);
      const text = res.text;
      if (res.status >= 200 && res.status < 300) return { attempts: i, response: text ? JSON.parse(text) : null };
      const reason = (() => {
        try {
          return String((JSON.parse(text) as { error?: unknown }).error ?? text);
        } catch {
          return text.slice(0, 200);
        }
      })();
      if (res.status < 500 && res.status !== 429) throw new ReportRejectedError(res.status, reason);
      last = `${res.status} ${reason}`;
    } catch (e) {
      if (e instanceof ReportRejectedError) throw e;
      last = (e as Error).message;
    }
    if (i < attempts) await sleep(Math.floor(random() * Math.min(max, base * 2 ** (i - 1))));
  }
  throw new ReportError(`no answer from ${server}${REPORT_PATH} after ${attempts} attempts (last: ${last})`);
}
