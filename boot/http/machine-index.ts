// The machine list behind /api/machines: a snapshot of every machine's
// summary, serialized once and sorted by MAC, so that a page is a slice of
// ready-made JSON. It is rebuilt only after the timeline changed, at most
// every `minIntervalMs`, in slices that yield to the event loop: with 10,000
// machines and many API clients, DHCP and TFTP packets wait for one slice at
// most, never for a whole listing. Requests waiting for a rebuild share it.
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { normalizeMac } from '../timeline.ts';
import type { Labels } from '../selection.ts';

export interface Lease {
  mac: string;
  ip: string;
  hostname?: string;
  expires?: string;
}

/** One machine in the default (summary) form of the list. */
export interface MachineSummary {
  mac: string;
  /** Kind of the last event: how far the last boot got. */
  stage?: string;
  lastSeen?: string;
  /** Why the last event was a refusal or an ignored packet. */
  reason?: string;
  ip?: string;
  hostname?: string;
  events: number;
}

export interface IndexRow {
  summary: MachineSummary;
  /** The summary as JSON, made once per rebuild. */
  json: string;
  last: BootEvent | null;
  lease?: Lease;
}

export interface Snapshot {
  /** The timeline's change count when the rebuild started: everything recorded before is in. */
  version: number;
  /** Sorted. */
  macs: string[];
  rows: Map<string, IndexRow>;
}

export interface MachineIndexOptions {
  timeline: BootTimeline;
  leases?: () => Lease[];
  labelsFor(mac: string): Labels | undefined;
  /** Machines handled between two yields to the event loop. */
  slice?: number;
  /** Least time between the starts of two rebuilds. */
  minIntervalMs?: number;
}

export class MachineIndex {
  private readonly opts: MachineIndexOptions;
  private readonly slice: number;
  private readonly minIntervalMs: number;
  private readonly unsubscribe: () => void;
  private version = 0;
  private snap: Snapshot | undefined;
  private building: Promise<void> | undefined;
  private lastStart = 0;

  constructor(opts: MachineIndexOptions) {
    this.opts = opts;
    this.slice = opts.slice ?? 256;
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.unsubscribe = opts.timeline.subscribe(() => this.version++);
  }

  /** A snapshot holding every event recorded before the call. */
  async snapshot(): Promise<Snapshot> {
    const want = this.version;
    while (!this.snap || this.snap.version < want) await this.rebuild();
    return this.snap;
  }

  close(): void {
    this.unsubscribe();
  }

  private rebuild(): Promise<void> {
    this.building ??= this.build().finally(() => (this.building = undefined));
    return this.building;
  }

  private async build(): Promise<void> {
    const wait = this.lastStart + this.minIntervalMs - Date.now();
    if (wait > 0) await sleep(wait);
    this.lastStart = Date.now();
    const version = this.version;
    const rows = new Map<string, IndexRow>();
    let n = 0;
    const pace = async () => {
      if (++n % this.slice === 0) await nextTurn();
    };
    // The timeline may change between slices: a machine seen twice keeps its later state.
    for (const m of this.opts.timeline.eachMachine()) {
      const summary: MachineSummary = { mac: m.mac, stage: m.last.kind, lastSeen: m.last.time, events: m.events };
      if (m.last.reason) summary.reason = m.last.reason;
      rows.set(m.mac, { summary, json: '', last: m.last });
      await pace();
    }
    for (const lease of this.leases()) {
      const mac = normalizeMac(lease.mac);
      if (!mac) continue;
      const row = rows.get(mac) ?? { summary: { mac, events: 0 }, json: '', last: null };
      row.lease = { ...lease, mac };
      row.summary.ip = lease.ip;
      if (lease.hostname) row.summary.hostname = lease.hostname;
      rows.set(mac, row);
      await pace();
    }
    for (const row of rows.values()) {
      const hostname = row.summary.hostname ?? this.opts.labelsFor(row.summary.mac)?.hostname;
      if (hostname) row.summary.hostname = hostname;
      row.json = JSON.stringify(row.summary);
      await pace();
    }
    this.snap = { version, macs: [...rows.keys()].sort(), rows };
  }

  private leases(): Lease[] {
    try {
      return this.opts.leases?.() ?? [];
    } catch {
      // A lease source in trouble must not take the API down; machines still list.
      return [];
    }
  }
}

/** Index of the first MAC after `cursor` in sorted `macs`. */
export function startAfter(macs: string[], cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  let lo = 0;
  let hi = macs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (macs[mid] <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
