// One warn line per kind of event at most every `intervalMs`, carrying the
// count since that kind's last line: a flood of refusals or failures from the
// node network must not become a flood of log lines. Kinds are names the code
// chooses (a handful), never client data, so the map stays small.

/** The interval for lines any client on the node network can cause: one per kind every 10 s, with a count. */
export const FLOOD_LOG_EVERY_MS = 10_000;

export class LogThrottle {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly kinds = new Map<string, { count: number; loggedAt: number }>();

  constructor(intervalMs: number, now: () => number = Date.now) {
    this.intervalMs = intervalMs;
    this.now = now;
  }

  /** Counts one event of `kind`; the count since the kind's last line when a line is due now, else undefined. */
  note(kind = ''): number | undefined {
    let k = this.kinds.get(kind);
    if (!k) {
      k = { count: 0, loggedAt: -Infinity };
      this.kinds.set(kind, k);
    }
    k.count++;
    const at = this.now();
    if (at - k.loggedAt < this.intervalMs) return undefined;
    const count = k.count;
    k.count = 0;
    k.loggedAt = at;
    return count;
  }
}
