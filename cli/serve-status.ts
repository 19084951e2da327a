// `zeroboot serve` on a terminal: one live line per machine (MAC, hostname,
// stage, IP, age of its last event) under the log lines, redrawn in place.
// The rows follow the timeline (its events and its drops, so they are bounded
// as it is); the block is cut to the terminal's height, most recent first.
import type { BootEvent, BootTimeline } from '../boot/timeline.ts';
import { eventAddress } from '../boot/timeline.ts';

export interface StatusRow {
  mac: string;
  hostname?: string;
  /** The last event's kind ("dhcp.ack", "http.kernel"...), with a refusal's reason after it. */
  stage: string;
  ip?: string;
  /** When the last event happened, in ms since the epoch. */
  at: number;
}

/** "4s", "3m", "2h", "5d": how long ago, in the largest whole unit. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** The block's lines: a header, then up to `height - 1` rows (the last one says how many more), each cut to `width - 1`. Pure, for tests. */
export function renderStatus(rows: StatusRow[], now: number, width: number, height: number): string[] {
  const sorted = [...rows].sort((a, b) => b.at - a.at);
  const room = Math.max(1, height - 1);
  const shown = sorted.length > room ? sorted.slice(0, room - 1) : sorted;
  const host = Math.min(24, Math.max(8, ...shown.map((r) => (r.hostname ?? '-').length)));
  const line = (mac: string, hostname: string, ip: string, ago: string, stage: string) =>
    `${mac.padEnd(17)}  ${hostname.slice(0, host).padEnd(host)}  ${ip.padEnd(15)}  ${ago.padStart(4)}  ${stage}`.slice(0, Math.max(1, width - 1));
  const out = [line('MAC', 'HOSTNAME', 'IP', 'AGE', `STAGE  (${rows.length} machine${rows.length === 1 ? '' : 's'})`)];
  for (const r of shown) out.push(line(r.mac, r.hostname ?? '-', r.ip ?? '-', age(now - r.at), r.stage));
  if (shown.length < sorted.length) out.push(`... and ${sorted.length - shown.length} more (GET /api/machines on the management port lists all)`.slice(0, Math.max(1, width - 1)));
  return out;
}

/** Rows kept per MAC from the timeline's events. */
export class StatusRows {
  private readonly rows = new Map<string, StatusRow>();
  private readonly hostnameOf: (mac: string) => string | undefined;

  constructor(hostnameOf: (mac: string) => string | undefined = () => undefined) {
    this.hostnameOf = hostnameOf;
  }

  observe(e: BootEvent): void {
    const d = e.detail ?? {};
    const prev = this.rows.get(e.mac);
    // DHCP says which address it gave; TFTP and HTTP which one asked.
    const ip = eventAddress(e) ?? prev?.ip;
    const hostname = (typeof d.hostname === 'string' ? d.hostname : undefined) ?? prev?.hostname ?? this.hostnameOf(e.mac);
    this.rows.set(e.mac, { mac: e.mac, hostname, ip, stage: e.reason ? `${e.kind}: ${e.reason}` : e.kind, at: Date.parse(e.time) });
  }

  drop(mac: string): void {
    this.rows.delete(mac);
  }

  list(): StatusRow[] {
    return [...this.rows.values()];
  }
}

export interface StatusView {
  /** Writes a log line above the block. */
  log(line: string): void;
  close(): void;
}

export interface StatusViewOptions {
  timeline: BootTimeline;
  stream: NodeJS.WriteStream;
  hostnameOf?: (mac: string) => string | undefined;
  /** Redraws for the ages at most this often, and after an event no sooner than `eventDelayMs`. */
  intervalMs?: number;
  eventDelayMs?: number;
}

export function startStatusView(opts: StatusViewOptions): StatusView {
  const { stream } = opts;
  const rows = new StatusRows(opts.hostnameOf);
  for (const m of opts.timeline.eachMachine()) rows.observe(m.last);
  let drawn = 0;
  let pending: NodeJS.Timeout | undefined;
  const erase = () => {
    // To the start of the block's first line, then clear to the end of the screen.
    if (drawn > 0) stream.write(`\x1b[${drawn}F\x1b[J`);
    drawn = 0;
  };
  const draw = () => {
    const lines = renderStatus(rows.list(), Date.now(), stream.columns || 80, Math.max(3, Math.floor((stream.rows || 24) / 2)));
    stream.write(lines.join('\n') + '\n');
    drawn = lines.length;
  };
  const redraw = () => {
    if (pending) clearTimeout(pending);
    pending = undefined;
    erase();
    draw();
  };
  const soon = () => {
    pending ??= setTimeout(redraw, opts.eventDelayMs ?? 200);
  };
  const stops = [
    opts.timeline.subscribe((e) => {
      rows.observe(e);
      soon();
    }),
    opts.timeline.subscribeDrops((mac) => {
      rows.drop(mac);
      soon();
    }),
  ];
  const tick = setInterval(redraw, opts.intervalMs ?? 1000);
  tick.unref();
  draw();
  return {
    log(line) {
      erase();
      stream.write(line + '\n');
      draw();
    },
    close() {
      for (const s of stops) s();
      clearInterval(tick);
      if (pending) clearTimeout(pending);
      erase();
    },
  };
}
