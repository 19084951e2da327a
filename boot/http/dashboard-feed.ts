// The dashboard's live feed: server-sent events on the management listener
// (/api/events). A new client gets every machine once, then only the rows
// that changed, at most every half second, from the machine index (which
// rebuilds only what changed), each row with its diagnosis (stage, state,
// cause). Bounded: a few clients at once, and a client that does not read
// (its socket holding more than 1 MiB) is dropped rather than buffered for.
// A row is sent again when its summary changed, when it was progressing and
// time alone turned it, or when its node reported (no timeline event says so:
// a machine shown stopped while its image booted slowly turns reported).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MachineIndex, MachineSummary } from './machine-index.ts';
import type { BootEventKind, BootTimeline } from '../timeline.ts';
import { diagnose, DEFAULT_QUIET_MS, DEFAULT_REPORT_MS, type Diagnosis } from '../diagnosis.ts';

export const MAX_FEED_CLIENTS = 16;
const TICK_MS = 500;
const MAX_UNREAD_BYTES = 1 << 20;
const KEEPALIVE_MS = 15_000;

export interface FeedRow extends MachineSummary {
  state: Diagnosis['state'];
  bootStage: Diagnosis['stage'];
  cause?: { id: string; title: string };
  nodeId?: string;
}

export interface FeedOptions {
  index: MachineIndex;
  timeline: BootTimeline;
  reportedAt?(mac: string): number | undefined;
  nodeIdOf?(mac: string): string | undefined;
}

interface Client {
  res: ServerResponse;
  /** The row JSON last sent to this client, per MAC (identity tells a change). */
  sent: Map<string, string>;
  /** MACs last sent as progressing: their state may turn with time alone. */
  progressing: Set<string>;
  /** The report time last sent per MAC: a report changes the state without a timeline event. */
  reports: Map<string, number | undefined>;
}

export class DashboardFeed {
  private readonly opts: FeedOptions;
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(opts: FeedOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.clients.size;
  }

  serve(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_FEED_CLIENTS) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      res.end(JSON.stringify({ error: `the live feed has ${MAX_FEED_CLIENTS} clients already; try again later` }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // Long-lived by design: the listener's idle timeout must not cut it.
    req.socket.setTimeout(0);
    const client: Client = { res, sent: new Map(), progressing: new Set(), reports: new Map() };
    this.clients.add(client);
    const drop = () => this.clients.delete(client);
    res.on('close', drop);
    this.timer ??= setInterval(() => void this.tick(), TICK_MS);
    this.keepalive ??= setInterval(() => this.each((c) => c.res.write(': keepalive\n\n')), KEEPALIVE_MS);
    void this.tick();
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.keepalive);
    this.timer = this.keepalive = undefined;
    this.each((c) => c.res.end());
    this.clients.clear();
  }

  private each(f: (c: Client) => void): void {
    for (const c of this.clients) {
      if (c.res.writableLength > MAX_UNREAD_BYTES) {
        c.res.destroy();
        this.clients.delete(c);
        continue;
      }
      f(c);
    }
  }

  private row(summary: MachineSummary): FeedRow {
    const local = this.opts.timeline.events(summary.mac);
    // Seen only by another server (shared state): judged by the stage it reported, as one event.
    const events = local.length === 0 && summary.server && summary.stage && summary.lastSeen ? [{ mac: summary.mac, kind: summary.stage as BootEventKind, time: summary.lastSeen, ...(summary.reason ? { reason: summary.reason } : {}) }] : local;
    const d = diagnose({ events, reportedAt: this.opts.reportedAt?.(summary.mac), now: Date.now(), quietMs: DEFAULT_QUIET_MS, reportMs: DEFAULT_REPORT_MS });
    const nodeId = this.opts.nodeIdOf?.(summary.mac);
    return { ...summary, state: d.state, bootStage: d.stage, ...(d.cause ? { cause: { id: d.cause.id, title: d.cause.title } } : {}), ...(nodeId ? { nodeId } : {}) };
  }

  private async tick(): Promise<void> {
    if (this.clients.size === 0) {
      clearInterval(this.timer);
      clearInterval(this.keepalive);
      this.timer = this.keepalive = undefined;
      return;
    }
    if (this.ticking) return;
    this.ticking = true;
    try {
      const snap = await this.opts.index.snapshot();
      // A row's diagnosis changes with time too (a quiet machine becomes stopped): rows are sent again when
      // their summary changed, or when they were sent as progressing and no longer are.
      const rows = new Map<string, FeedRow>();
      const rowOf = (mac: string) => {
        let r = rows.get(mac);
        if (!r) rows.set(mac, (r = this.row(snap.rows.get(mac)!.summary)));
        return r;
      };
      this.each((c) => {
        const changed: FeedRow[] = [];
        for (const mac of snap.macs) {
          const row = snap.rows.get(mac)!;
          const reported = this.opts.reportedAt?.(mac);
          if (c.sent.get(mac) === row.json && c.reports.get(mac) === reported && !(c.progressing.has(mac) && rowOf(mac).state !== 'progressing')) continue;
          const r = rowOf(mac);
          changed.push(r);
          c.sent.set(mac, row.json);
          c.reports.set(mac, reported);
          if (r.state === 'progressing') c.progressing.add(mac);
          else c.progressing.delete(mac);
        }
        const removed = [...c.sent.keys()].filter((m) => !snap.rows.has(m));
        for (const m of removed) {
          c.sent.delete(m);
          c.reports.delete(m);
          c.progressing.delete(m);
        }
        if (changed.length || removed.length) c.res.write(`data: ${JSON.stringify({ changed, removed })}\n\n`);
      });
    } finally {
      this.ticking = false;
    }
  }
}
