// The machine list behind /api/machines: a snapshot of every machine's
// summary, serialized once and sorted by MAC, so that a page is a slice of
// ready-made JSON. It is rebuilt only after the timeline changed, at most
// every `minIntervalMs`, in slices that yield to the event loop: with 10,000
// machines and many API clients, DHCP and TFTP packets wait for one slice at
// most, never for a whole listing. Requests waiting for a rebuild share it,
// and take turns to render their pages, one per event-loop turn. Listing the
// leases is one long synchronous call (80 ms for 10,000 on a busy 2-core
// machine), so the lease map is refreshed only after a lease event, and at
// most every `leaseIntervalMs`.
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
  /** Label hostname the JSON was made with, to know when to make it again. */
  labelHostname?: string;
  /** The rebuild that last saw this machine; rows no rebuild saw are dropped. */
  gen: number;
}

export interface Snapshot {
  /** The timeline's change count when the rebuild started: everything recorded before is in. */
  version: number;
  /** Sorted. */
  macs: string[];
  rows: Map<string, IndexRow>;
  /** Summary pages already rendered from this snapshot: clients walking the list together share them. */
  pages: Map<string, Buffer>;
}

export interface MachineIndexOptions {
  timeline: BootTimeline;
  leases?: () => Lease[];
  labelsFor(mac: string): Labels | undefined;
  /** Machines handled between two yields to the event loop. */
  slice?: number;
  /** Least time between the starts of two rebuilds. */
  minIntervalMs?: number;
  /** Least time between two listings of the leases. */
  leaseIntervalMs?: number;
}

/** Events after which the lease listing may differ (an offer is not a lease). */
const LEASE_EVENTS = new Set(['dhcp.ack', 'dhcp.release', 'dhcp.decline', 'dhcp.nak']);

export class MachineIndex {
  private readonly opts: MachineIndexOptions;
  private readonly slice: number;
  private readonly minIntervalMs: number;
  private readonly leaseIntervalMs: number;
  private readonly unsubscribe: () => void;
  private version = 0;
  private snap: Snapshot | undefined;
  private building: Promise<void> | undefined;
  private lastStart = 0;
  private readonly rows = new Map<string, IndexRow>();
  private gen = 0;
  private leaseMap = new Map<string, Lease>();
  private leasesAt = -Infinity;
  private leasesChanged = true;
  private turnGate: Promise<void> = Promise.resolve();

  constructor(opts: MachineIndexOptions) {
    this.opts = opts;
    this.slice = opts.slice ?? 256;
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.leaseIntervalMs = opts.leaseIntervalMs ?? 10_000;
    this.unsubscribe = opts.timeline.subscribe((e) => {
      this.version++;
      if (LEASE_EVENTS.has(e.kind)) this.leasesChanged = true;
    });
  }

  /** A snapshot holding every event recorded before the call. */
  async snapshot(): Promise<Snapshot> {
    const want = this.version;
    while (!this.snap || this.snap.version < want) await this.rebuild();
    return this.snap;
  }

  /** Resolves in an event-loop turn of its own: callers rendering pages one after another let packets in between. */
  turn(): Promise<void> {
    const mine = this.turnGate.then(() => nextTurn());
    this.turnGate = mine;
    return mine;
  }

  /** The machine's lease, from a listing of the leases at most `leaseIntervalMs` old. */
  lease(mac: string): Lease | undefined {
    return this.refreshLeases().get(mac);
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
    const leases = this.refreshLeases();
    // One map of rows, updated in place: a fresh map of 10,000 rows four times a second would
    // outlive the young generation and end in long old-generation collections.
    const rows = this.rows;
    const gen = ++this.gen;
    let changedSet = false;
    let n = 0;
    const pace = async () => {
      if (++n % this.slice === 0) await nextTurn();
    };
    const add = (mac: string, events: number, last: BootEvent | null) => {
      const lease = leases.get(mac);
      const labelHostname = this.opts.labelsFor(mac)?.hostname;
      let row = rows.get(mac);
      if (!row) {
        row = { summary: { mac, events }, json: '', last: null, gen };
        rows.set(mac, row);
        changedSet = true;
      } else if (row.last === last && row.summary.events === events && row.lease === lease && row.labelHostname === labelHostname) {
        // Most machines did nothing since the last rebuild: their JSON stands.
        row.gen = gen;
        return;
      }
      const summary: MachineSummary = { mac, events };
      if (last) Object.assign(summary, { stage: last.kind, lastSeen: last.time }, last.reason ? { reason: last.reason } : {});
      if (lease) summary.ip = lease.ip;
      const hostname = lease?.hostname ?? labelHostname;
      if (hostname) summary.hostname = hostname;
      Object.assign(row, { summary, json: JSON.stringify(summary), last, lease, labelHostname, gen });
    };
    // The timeline may change between slices: a machine seen twice keeps its later state.
    for (const m of this.opts.timeline.eachMachine()) {
      add(m.mac, m.events, m.last);
      await pace();
    }
    for (const mac of leases.keys()) {
      if (rows.get(mac)?.gen !== gen) add(mac, 0, null);
      await pace();
    }
    for (const [mac, row] of rows) {
      if (row.gen !== gen) {
        rows.delete(mac);
        changedSet = true;
      }
      await pace();
    }
    const macs = changedSet || !this.snap ? [...rows.keys()].sort() : this.snap.macs;
    this.snap = { version, macs, rows, pages: new Map() };
  }

  private refreshLeases(): Map<string, Lease> {
    if (!this.leasesChanged || Date.now() - this.leasesAt < this.leaseIntervalMs) return this.leaseMap;
    this.leasesChanged = false;
    this.leasesAt = Date.now();
    const map = new Map<string, Lease>();
    for (const lease of this.leases()) {
      const mac = normalizeMac(lease.mac);
      if (mac) map.set(mac, { ...lease, mac });
    }
    this.leaseMap = map;
    return map;
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
