// The DHCP thread's side of the mirror: timeline events, label changes and
// log lines queued in order and sent to the main thread every few
// milliseconds, with a new lease listing when leases changed. Bounded: the
// main thread acknowledges each batch, at most MAX_IN_FLIGHT wait for it,
// and while it is behind (busy, collecting) at most MAX_ENTRIES are kept
// here; more are only counted, so a stalled main thread costs DHCP memory
// up to a limit and never a delayed reply.
import type { BootEventKind, EventDetail } from '../timeline.ts';
import type { Labels } from '../selection.ts';
import type { Level, Logger } from '../log.ts';
import type { LeaseInfo } from './leases.ts';
import type { DhcpEvents } from './server.ts';
import type { Entry, FromWorker } from './thread-messages.ts';

const FLUSH_MS = 4;
const MAX_ENTRIES = 50_000;
const MAX_IN_FLIGHT = 4;
/** A changed lease listing goes with the batch that says why, unless the table is big: copying one costs both threads, so at most one per this many ms per lease. */
const LEASES_MS_PER_LEASE = 0.1;
const LEASE_KINDS: ReadonlySet<BootEventKind> = new Set(['dhcp.offer', 'dhcp.ack', 'dhcp.nak', 'dhcp.release', 'dhcp.decline']);

export class EventBatcher implements DhcpEvents {
  /** Set when leases may have changed without an event (offers timing out, other servers' rows). */
  leasesDirty = false;
  private entries: Entry[] = [];
  private dropped = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leasesSentAt = 0;
  private leasesSize = 0;
  private readonly send: (m: FromWorker) => void;
  private readonly leases: () => LeaseInfo[];

  constructor(send: (m: FromWorker) => void, leases: () => LeaseInfo[]) {
    this.send = send;
    this.leases = leases;
  }

  record(mac: string, kind: BootEventKind, detail?: EventDetail, reason?: string): void {
    if (LEASE_KINDS.has(kind)) this.leasesDirty = true;
    this.push(['event', mac, kind, detail, reason, Date.now()]);
  }

  recordIgnored(mac: string, kind: BootEventKind, reason: string, detail?: EventDetail): void {
    this.push(['ignored', mac, kind, reason, detail, Date.now()]);
  }

  labels(mac: string, labels: Labels): void {
    this.push(['labels', mac, labels]);
  }

  /** A logger whose lines are written by the main thread's logger. */
  logger(): Logger {
    const line = (level: Level) => (msg: string, fields?: Record<string, unknown>) => this.push(['log', level, msg, fields && cloneable(fields)]);
    return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
  }

  /** The main thread took a batch. */
  acked(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.entries.length > 0 || this.dropped > 0 || this.leasesDirty) this.schedule();
  }

  /** Sends what is queued now, and the lease listing when it changed and is due (or `force`). */
  flush(force = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight >= MAX_IN_FLIGHT && !force) return;
    const wait = this.leasesSentAt + this.leasesSize * LEASES_MS_PER_LEASE - Date.now();
    const leasesDue = this.leasesDirty && (force || wait <= 0);
    if (this.leasesDirty && !leasesDue && !this.leaseTimer) {
      this.leaseTimer = setTimeout(() => {
        this.leaseTimer = undefined;
        this.flush();
      }, wait);
    }
    if (this.entries.length === 0 && this.dropped === 0 && !leasesDue) return;
    const msg: FromWorker = { type: 'batch', entries: JSON.stringify(this.entries), dropped: this.dropped };
    if (leasesDue) {
      msg.leases = this.leases();
      this.leasesDirty = false;
      this.leasesSentAt = Date.now();
      this.leasesSize = msg.leases.length;
    }
    this.entries = [];
    this.dropped = 0;
    this.inFlight++;
    this.send(msg);
  }

  private push(e: Entry): void {
    if (this.entries.length >= MAX_ENTRIES) {
      this.dropped++;
      return;
    }
    this.entries.push(e);
    this.schedule();
  }

  private schedule(): void {
    if (!this.timer && this.inFlight < MAX_IN_FLIGHT) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }
}

/** Log fields that structured clone takes: anything but plain values becomes its text. */
function cloneable(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in fields) {
    const v = fields[k];
    out[k] = v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : v instanceof Error ? v.message : String(v);
  }
  return out;
}
