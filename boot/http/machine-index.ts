// The machine list behind /api/machines: every machine's summary, serialized
// once and kept sorted by MAC, so that a page is a slice of ready-made JSON.
// The index follows the timeline: each event marks its MAC, and a rebuild
// (at most every `minIntervalMs`, only after a change) updates the marked
// rows alone, in slices that yield to the event loop, so its work and its
// garbage grow with what changed, not with the 10,000 machines listed.
// Requests waiting for a rebuild share it, and take turns to render their
// pages, one per event-loop turn. Leases are listed again only after a lease
// event, at most every `leaseIntervalMs`, in slices too (listing 10,000 at
// once blocks for tens of ms on a busy 2-core machine).
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { eventAddress } from '../timeline.ts';
import { normalizeMac } from '../../lib/mac.ts';
import type { Labels } from '../selection.ts';
import type { PeerMachine } from '../state/pg-machines.ts';

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
  /** Set when the stage was seen by another server sharing the state (its node-facing HTTP base). */
  server?: string;
}

export interface IndexRow {
  summary: MachineSummary;
  /** The summary as JSON, made when the row changes. */
  json: string;
  last: BootEvent | null;
  lease?: Lease;
  /** Label hostname the JSON was made with, to know when to make it again. */
  labelHostname?: string;
  peer?: PeerMachine;
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
  /** The leases, read one at a time (a slice between two yields). */
  leases?: () => Iterable<Lease>;
  labelsFor(mac: string): Labels | undefined;
  /** Machines (or leases) handled between two yields to the event loop. */
  slice?: number;
  /** Least time between the starts of two rebuilds. */
  minIntervalMs?: number;
  /** Least time between two listings of the leases. */
  leaseIntervalMs?: number;
  /** Machines other servers saw (shared state in PostgreSQL): listed too, their newer stage shown. */
  peers?: { get(mac: string): PeerMachine | undefined; macs(): Iterable<string>; subscribe(listener: (mac: string) => void): () => void };
}

/** Events after which the lease listing may differ (an offer is not a lease). */
const LEASE_EVENTS = new Set(['dhcp.ack', 'dhcp.release', 'dhcp.decline', 'dhcp.nak']);
/** Up to this many MACs joining or leaving are spliced into the sorted list; more are merged in one pass. */
const SPLICE_MAX = 32;

export class MachineIndex {
  private readonly opts: MachineIndexOptions;
  private readonly slice: number;
  private readonly minIntervalMs: number;
  private readonly leaseIntervalMs: number;
  private readonly unsubscribe: (() => void)[];
  private version = 0;
  /** MACs whose row may be out of date: an event, a drop or a lease change since the last rebuild. */
  private dirty = new Set<string>();
  private snap: Snapshot | undefined;
  private building: Promise<void> | undefined;
  private lastStart = 0;
  private readonly rows = new Map<string, IndexRow>();
  private macs: string[] = [];
  private leaseMap = new Map<string, Lease>();
  private leasesAt = -Infinity;
  private leasesChanged = true;
  private listing: Promise<void> | undefined;
  private turnGate: Promise<void> = Promise.resolve();

  constructor(opts: MachineIndexOptions) {
    this.opts = opts;
    this.slice = opts.slice ?? 256;
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.leaseIntervalMs = opts.leaseIntervalMs ?? 10_000;
    for (const m of opts.timeline.eachMachine()) this.dirty.add(m.mac);
    this.unsubscribe = [
      opts.timeline.subscribe((e) => {
        this.version++;
        this.dirty.add(e.mac);
        if (LEASE_EVENTS.has(e.kind)) this.leasesChanged = true;
      }),
      opts.timeline.subscribeDrops((mac) => {
        this.version++;
        this.dirty.add(mac);
      }),
    ];
    if (opts.peers) {
      for (const mac of opts.peers.macs()) this.dirty.add(mac);
      this.unsubscribe.push(
        opts.peers.subscribe((mac) => {
          this.version++;
          this.dirty.add(mac);
        }),
      );
    }
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
  async lease(mac: string): Promise<Lease | undefined> {
    await this.refreshLeases();
    return this.leaseMap.get(mac);
  }

  close(): void {
    for (const u of this.unsubscribe) u();
  }

  private rebuild(): Promise<void> {
    this.building ??= this.build().finally(() => (this.building = undefined));
    return this.building;
  }

  private async build(): Promise<void> {
    const wait = this.lastStart + this.minIntervalMs - Date.now();
    if (wait > 0) await sleep(wait);
    this.lastStart = Date.now();
    await this.refreshLeases();
    // Taken together, in one turn: every change counted in `version` has its MAC in `dirty`.
    const version = this.version;
    const dirty = this.dirty;
    this.dirty = new Set();
    const added: string[] = [];
    const removed = new Set<string>();
    let n = 0;
    for (const mac of dirty) {
      const change = this.update(mac);
      if (change === 'added') added.push(mac);
      else if (change === 'removed') removed.add(mac);
      if (++n % this.slice === 0) await nextTurn();
    }
    if (added.length > 0 || removed.size > 0) this.macs = resorted(this.macs, added, removed, (mac) => this.rows.has(mac));
    this.snap = { version, macs: this.macs, rows: this.rows, pages: new Map() };
  }

  /** Brings one row up to date with the timeline and the leases. */
  private update(mac: string): 'added' | 'removed' | undefined {
    const latest = this.opts.timeline.latest(mac);
    const lease = this.leaseMap.get(mac);
    const peer = this.opts.peers?.get(mac);
    let row = this.rows.get(mac);
    if (!latest && !lease && !peer) {
      if (!row) return undefined;
      this.rows.delete(mac);
      return 'removed';
    }
    const events = latest?.events ?? 0;
    const last = latest?.last ?? null;
    const labelHostname = this.opts.labelsFor(mac)?.hostname;
    let change: 'added' | undefined;
    if (!row) {
      row = { summary: { mac, events }, json: '', last: null };
      this.rows.set(mac, row);
      change = 'added';
    } else if (row.last === last && row.summary.events === events && row.lease === lease && row.labelHostname === labelHostname && row.peer === peer) {
      return undefined;
    }
    const summary: MachineSummary = { mac, events };
    if (peer && (!last || peer.lastSeen > last.time)) Object.assign(summary, { stage: peer.stage, lastSeen: peer.lastSeen }, peer.reason ? { reason: peer.reason } : {}, { server: peer.server });
    else if (last) Object.assign(summary, { stage: last.kind, lastSeen: last.time }, last.reason ? { reason: last.reason } : {});
    // Without a lease of ours (proxy or off mode), the address the machine last asked from.
    const ip = lease?.ip ?? eventAddress(last) ?? row.summary.ip;
    if (ip) summary.ip = ip;
    const hostname = lease?.hostname ?? labelHostname;
    if (hostname) summary.hostname = hostname;
    Object.assign(row, { summary, json: JSON.stringify(summary), last, lease, labelHostname, peer });
    return change;
  }

  /** Lists the leases again if one may have changed and the last listing is old enough; one listing at a time. */
  private refreshLeases(): Promise<void> {
    if (!this.leasesChanged || Date.now() - this.leasesAt < this.leaseIntervalMs) return this.listing ?? Promise.resolve();
    this.listing ??= this.listLeases().finally(() => (this.listing = undefined));
    return this.listing;
  }

  private async listLeases(): Promise<void> {
    this.leasesChanged = false;
    this.leasesAt = Date.now();
    const map = new Map<string, Lease>();
    let n = 0;
    try {
      for (const lease of this.opts.leases?.() ?? []) {
        const mac = normalizeMac(lease.mac);
        if (mac) map.set(mac, { ...lease, mac });
        if (++n % this.slice === 0) await nextTurn();
      }
    } catch {
      // A lease source in trouble must not take the API down; machines still list, with the leases last read.
      return;
    }
    const old = this.leaseMap;
    for (const [mac, lease] of map) if (!sameLease(old.get(mac), lease)) this.dirty.add(mac);
    for (const mac of old.keys()) if (!map.has(mac)) this.dirty.add(mac);
    this.leaseMap = map;
  }
}

/** The same fields with the same values: the row keeps its lease object and its JSON. */
function sameLease(a: Lease | undefined, b: Lease): boolean {
  if (!a) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if ((a as unknown as Record<string, unknown>)[k] !== (b as unknown as Record<string, unknown>)[k]) return false;
  return true;
}

/**
 * The sorted MAC list after `added` joined and `removed` left (a MAC may be
 * in both when it left and came back). A few are spliced in place; many are
 * merged in one pass, as 10,000 binary-search splices or a full sort would
 * block for milliseconds.
 */
export function resorted(macs: string[], added: string[], removed: Set<string>, present: (mac: string) => boolean): string[] {
  const joining = added.filter(present).sort();
  if (joining.length + removed.size <= SPLICE_MAX) {
    for (const mac of removed) {
      const i = startAfter(macs, mac) - 1;
      if (i >= 0 && macs[i] === mac && !present(mac)) macs.splice(i, 1);
    }
    for (const mac of joining) {
      const i = startAfter(macs, mac);
      if (macs[i - 1] !== mac) macs.splice(i, 0, mac);
    }
    return macs;
  }
  const out: string[] = [];
  let j = 0;
  for (const mac of macs) {
    if (removed.has(mac) && !present(mac)) continue;
    while (j < joining.length && joining[j] < mac) out.push(joining[j++]);
    if (joining[j] === mac) j++;
    out.push(mac);
  }
  while (j < joining.length) out.push(joining[j++]);
  return out;
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

