// The address pool as the full-mode handler (full.ts) sees it. Two backends:
// the in-memory pool (leases.ts, persisted by lease-file.ts), which answers at
// once, and the PostgreSQL table shared by several servers (lease-pg.ts),
// which answers with a promise. The handler passes a promise on instead of
// awaiting everything, so the in-memory path stays synchronous: no promise
// or microtask per packet where none is needed.
import type { ClientRef, Grant, LeaseInfo, LeaseRecord, RequestKind } from './leases.ts';

export type Maybe<T> = T | Promise<T>;

export interface LeaseBackend {
  /** The lease an OFFER promises and an ACK grants. */
  readonly leaseSeconds: number;
  /** Whether the address lies in the pool's subnet (relay and interface matching); configuration only, never waits. */
  inSubnet(ip: number | string): boolean;
  /** Picks an address for a DISCOVER and holds it for the client for a short while. */
  offer(client: ClientRef, requested?: string): Maybe<Grant>;
  /** Whether the pool has a record of the client (RFC 2131 4.3.2: unknown clients' INIT-REBOOT gets silence). */
  knows(client: ClientRef): Maybe<boolean>;
  /** The client took another server's offer. */
  withdraw(client: ClientRef): void;
  /** Decides a REQUEST: a bound lease or the reason to NAK. A grant's `record` is what the caller must still persist. */
  request(client: ClientRef, ip: string, kind: RequestKind, hostname?: string): Maybe<Grant>;
  release(client: ClientRef, ip: string): Maybe<LeaseRecord | undefined>;
  decline(client: ClientRef, ip: string): Maybe<LeaseRecord | undefined>;
}

/** The pool's leases for listing (management API, the lease table's readers). */
export interface LeaseListing {
  list(): LeaseInfo[];
  each(): Iterable<LeaseInfo>;
}

/** Applies `f` to a value now, or once its promise settles. */
export function andThen<T, U>(v: Maybe<T>, f: (t: T) => Maybe<U>): Maybe<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** The backend could not answer now (lease database unreachable or saturated): the packet goes unanswered, the server keeps serving. */
export class LeaseDbError extends Error {}
