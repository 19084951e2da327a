// Read requests waiting for a transfer slot. When every slot is taken, a
// request waits here (first come, first served) instead of getting ERROR
// "server busy": PXE firmware gives up the boot on an ERROR, but simply
// retransmits an unanswered request, so in a boot storm a short wait is a
// slower boot where a refusal is a failed one. Bounded in entries and per
// client address; a retransmission from the same port refreshes its entry
// (it keeps its place). Pure: the clock comes in.
import type { Client } from './slots.ts';

export interface Waiting<R> {
  req: R;
  from: Client;
  /** When the client last sent the request (its latest retransmission). */
  seenAt: number;
}

export class WaitQueue<R> {
  private readonly byClient = new Map<string, Waiting<R>>();
  private readonly perHost = new Map<string, number>();
  private readonly max: number;
  private readonly maxPerHost: number;

  constructor(max: number, maxPerHost: number) {
    this.max = max;
    this.maxPerHost = maxPerHost;
  }

  get size(): number {
    return this.byClient.size;
  }

  /** Queues or refreshes the request; false when there is no room (the caller refuses it). */
  offer(req: R, from: Client, now: number): boolean {
    const k = key(from);
    const had = this.byClient.get(k);
    if (had) {
      had.req = req;
      had.seenAt = now;
      return true;
    }
    if (this.byClient.size >= this.max || (this.perHost.get(from.address) ?? 0) >= this.maxPerHost) return false;
    this.byClient.set(k, { req, from, seenAt: now });
    this.perHost.set(from.address, (this.perHost.get(from.address) ?? 0) + 1);
    return true;
  }

  /** The oldest request its client sent within `freshMs`; staler ones (the client gave up) are dropped on the way. */
  take(now: number, freshMs: number): Waiting<R> | undefined {
    for (const [k, w] of this.byClient) {
      this.remove(k, w.from);
      if (now - w.seenAt <= freshMs) return w;
    }
    return undefined;
  }

  delete(from: Client): void {
    const k = key(from);
    if (this.byClient.has(k)) this.remove(k, from);
  }

  clear(): void {
    this.byClient.clear();
    this.perHost.clear();
  }

  private remove(k: string, from: Client): void {
    this.byClient.delete(k);
    const n = (this.perHost.get(from.address) ?? 1) - 1;
    if (n > 0) this.perHost.set(from.address, n);
    else this.perHost.delete(from.address);
  }
}

function key(c: Client): string {
  return `${c.address}:${c.port}`;
}
