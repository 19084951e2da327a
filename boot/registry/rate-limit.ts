// A token bucket per client address, bounded in clients: the least recently
// seen address is dropped first, which at worst hands it a fresh burst.
// Pure (the clock comes in), so tests need no waiting.

export interface RateLimitOptions {
  /** Requests one address may make at once. */
  burst: number;
  /** Tokens an address regains per second. */
  perSecond: number;
  /** Addresses remembered at most. */
  maxClients: number;
}

export class RateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly opts: RateLimitOptions;

  constructor(opts: RateLimitOptions) {
    this.opts = opts;
  }

  /** Takes a token for `client`: 0 when granted, else the milliseconds until one is due. */
  take(client: string, now: number): number {
    const { burst, perSecond, maxClients } = this.opts;
    const b = this.buckets.get(client) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * perSecond);
    b.at = now;
    // Re-inserted so Map order is recency order.
    this.buckets.delete(client);
    this.buckets.set(client, b);
    if (this.buckets.size > maxClients) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / perSecond) * 1000);
  }
}
