// Boot-event timeline per MAC: what the server saw and did for each machine,
// including packets it ignored and why. Bounded in machines, events per
// machine and estimated bytes, so a noisy or hostile network cannot grow it
// without limit; packets ignored from MACs it has no record of are only
// counted per reason, since a flood of them would otherwise be the timeline.
import { normalizeMac } from '../lib/mac.ts';
import { RecencyMap } from './recency-map.ts';

export type BootEventKind =
  | 'dhcp.discover' | 'dhcp.offer' | 'dhcp.request' | 'dhcp.ack' | 'dhcp.nak'
  | 'dhcp.decline' | 'dhcp.release' | 'dhcp.inform' | 'dhcp.ignored'
  | 'tftp.request' | 'tftp.done' | 'tftp.error'
  | 'http.script' | 'http.kernel' | 'http.initrd' | 'http.artifact' | 'http.error'
  | 'grub.config' | 'grub.error';

export type EventDetail = Record<string, string | number | boolean>;

export interface BootEvent {
  time: string;
  mac: string;
  kind: BootEventKind;
  /** Free-form facts: file name, address, boot file, client class... */
  detail?: EventDetail;
  /** Set when the server ignored a packet or refused a request. */
  reason?: string;
}

/** The address an event names: the one DHCP gave (`ip`), or the one a TFTP or HTTP request came from (`client`). */
export function eventAddress(e: BootEvent | null | undefined): string | undefined {
  const d = e?.detail;
  return typeof d?.ip === 'string' ? d.ip : typeof d?.client === 'string' ? d.client : undefined;
}

/** Ignored packets from MACs without a timeline, counted per reason. */
export interface IgnoredCount {
  reason: string;
  kind: BootEventKind;
  count: number;
  /** ISO times of the first and the last such packet. */
  first: string;
  last: string;
  lastMac: string;
  lastDetail?: EventDetail;
}

export interface TimelineLimits {
  eventsPerMachine: number;
  machines: number;
  /** Estimated bytes of all kept events; the least recently active machines are dropped first. */
  bytes: number;
  /** Longest detail value or reason kept, in characters; longer ones are cut with a note. */
  stringChars: number;
  /** Distinct reasons counted for ignored packets; further reasons share one counter. */
  ignoredReasons: number;
}

export type TimelineListener = (event: BootEvent) => void;
/** Told the MAC of a machine the bounds dropped (it records no event). */
export type DropListener = (mac: string) => void;

interface Machine {
  mac: string;
  events: BootEvent[];
  bytes: number;
}

// Rough V8 costs (64-bit, no pointer compression), calibrated on heap growth for DHCP events with fresh strings:
// an event object with its time string and detail object, each detail entry,
// and a machine's map entry with its array.
const EVENT_BYTES = 120;
const ENTRY_BYTES = 20;
const STRING_BYTES = 16;
const MACHINE_BYTES = 250;
const OTHER_REASONS = 'other reasons (too many distinct reasons to count each)';

export class BootTimeline {
  /** Recency order is what the bounds drop by: least recently active first. */
  private readonly byMac = new RecencyMap<Machine>();
  private readonly ignoredByReason = new Map<string, IgnoredCount>();
  private readonly limits: TimelineLimits;
  private readonly listeners = new Set<TimelineListener>();
  private readonly dropListeners = new Set<DropListener>();
  private readonly now: () => number;
  private totalBytes = 0;
  /** The last millisecond an event was stamped in, and its ISO string: a burst of events shares one. */
  private stampMs = NaN;
  private stamp = '';

  /** `now` is the clock in milliseconds since the epoch (Date.now's form). */
  constructor(limits: Partial<TimelineLimits> = {}, now: () => number = Date.now) {
    this.limits = { eventsPerMachine: 500, machines: 10_000, bytes: 64 * 1024 * 1024, stringChars: 256, ignoredReasons: 256, ...limits };
    this.now = now;
  }

  /** Records an event; `detail` is kept (cleaned in place), so pass a fresh object. `atMs`: when it happened, if not now (events another thread saw). */
  record(mac: string, kind: BootEventKind, detail?: EventDetail, reason?: string, atMs?: number): BootEvent {
    const key = this.key(mac);
    let m = this.byMac.use(key);
    if (!m) {
      if (this.byMac.size >= this.limits.machines) this.dropOldestMachine();
      m = { mac: key, events: [], bytes: MACHINE_BYTES };
      this.totalBytes += MACHINE_BYTES;
      this.byMac.set(key, m);
    }
    // The machine's own key string, so events do not each hold a copy of the MAC.
    const event: BootEvent = { time: this.time(atMs), mac: m.mac, kind };
    if (detail) event.detail = this.cleanDetail(detail);
    if (reason) event.reason = clean(reason, this.limits.stringChars);
    const size = eventBytes(event);
    m.events.push(event);
    m.bytes += size;
    this.totalBytes += size;
    if (m.events.length > this.limits.eventsPerMachine) this.dropEvents(m, m.events.length - this.limits.eventsPerMachine);
    while (this.totalBytes > this.limits.bytes) {
      const oldest = this.byMac.oldest()!;
      if (oldest !== m) this.dropMachine(oldest);
      else if (m.events.length > 1) this.dropEvents(m, 1);
      else break;
    }
    for (const l of this.listeners) l(event);
    return event;
  }

  /**
   * A packet the server ignored: an event on the machine's timeline when the
   * MAC has one, else only a count under its reason (no event, no listener
   * call), so junk from MACs never seen costs no memory per packet.
   */
  recordIgnored(mac: string, kind: BootEventKind, reason: string, detail?: EventDetail, atMs?: number): BootEvent | undefined {
    const key = this.key(mac);
    if (this.byMac.has(key)) return this.record(key, kind, detail, reason, atMs);
    const time = this.time(atMs);
    const why = clean(reason, this.limits.stringChars);
    let c = this.ignoredByReason.get(why);
    if (!c) {
      const full = this.ignoredByReason.size >= this.limits.ignoredReasons;
      const bucket = full ? OTHER_REASONS : why;
      c = this.ignoredByReason.get(bucket);
      if (!c) {
        c = { reason: bucket, kind, count: 0, first: time, last: time, lastMac: key };
        this.ignoredByReason.set(bucket, c);
      }
    }
    c.count++;
    c.last = time;
    c.lastMac = key;
    if (detail) c.lastDetail = this.cleanDetail(detail);
    else delete c.lastDetail;
    return undefined;
  }

  /** Counts of ignored packets from MACs without a timeline, most frequent first. */
  ignored(): IgnoredCount[] {
    return [...this.ignoredByReason.values()].map((c) => ({ ...c })).sort((a, b) => b.count - a.count);
  }

  events(mac: string): BootEvent[] {
    return [...(this.byMac.peek(this.key(mac))?.events ?? [])];
  }

  machines(): { mac: string; events: number; last: BootEvent }[] {
    return [...this.eachMachine()];
  }

  /** Estimated bytes held by the kept events (what `limits.bytes` bounds). */
  bytes(): number {
    return this.totalBytes;
  }

  /** Like machines(), one at a time, so a caller can yield to the event loop between machines. */
  *eachMachine(): Generator<{ mac: string; events: number; last: BootEvent }> {
    for (const [mac, m] of this.byMac.entries()) {
      const last = m.events[m.events.length - 1];
      if (last) yield { mac, events: m.events.length, last };
    }
  }

  /** One machine's event count and last event, without copying its events. */
  latest(mac: string): { events: number; last: BootEvent } | undefined {
    const m = this.byMac.peek(this.key(mac));
    const last = m?.events[m.events.length - 1];
    return m && last ? { events: m.events.length, last } : undefined;
  }

  subscribe(listener: TimelineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with each machine the bounds drop, so views kept per MAC can follow. */
  subscribeDrops(listener: DropListener): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  private time(atMs?: number): string {
    const ms = atMs ?? this.now();
    if (ms !== this.stampMs) {
      this.stampMs = ms;
      this.stamp = new Date(ms).toISOString();
    }
    return this.stamp;
  }

  private key(mac: string): string {
    // Not every caller has a MAC (HTTP query strings): such keys are cleaned and cut short like any client text.
    return normalizeMac(mac) ?? clean(mac.toLowerCase(), 64);
  }

  private cleanDetail(detail: EventDetail): EventDetail {
    // Cleaned in place and kept: every caller builds a fresh object per event, and a copy
    // per event (DHCP records four per lease) was a measurable share of the server's time.
    for (const k in detail) {
      const v = detail[k];
      if (typeof v !== 'string') continue;
      const c = clean(v, this.limits.stringChars);
      if (c !== v) detail[k] = c;
    }
    return detail;
  }

  private dropOldestMachine(): void {
    const oldest = this.byMac.oldest();
    if (oldest) this.dropMachine(oldest);
  }

  private dropMachine(m: Machine): void {
    this.byMac.delete(m.mac);
    this.totalBytes -= m.bytes;
    for (const l of this.dropListeners) l(m.mac);
  }

  private dropEvents(m: Machine, n: number): void {
    for (const e of m.events.splice(0, n)) {
      const size = eventBytes(e);
      m.bytes -= size;
      this.totalBytes -= size;
    }
  }
}

function eventBytes(e: BootEvent): number {
  let n = EVENT_BYTES;
  if (e.reason) n += STRING_BYTES + e.reason.length;
  if (e.detail) {
    for (const k in e.detail) {
      const v = e.detail[k];
      n += ENTRY_BYTES + (typeof v === 'string' ? STRING_BYTES + v.length : 0);
    }
  }
  return n;
}

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: what lets client text forge lines.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Client-supplied text made safe to show: control characters as \xNN (\uNNNN), at most `max` characters kept. */
export function clean(s: string, max: number): string {
  let out = s.length > max ? `${s.slice(0, max)}…(${s.length - max} more characters)` : s;
  CONTROL.lastIndex = 0;
  if (CONTROL.test(out)) {
    out = out.replace(CONTROL, (c) => {
      const code = c.charCodeAt(0);
      return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
    });
  }
  return out;
}
