// The full-mode address pool: reservations, offers, leases and declined
// addresses, as an in-memory state machine with no I/O. Every change that must
// survive a restart comes back as a LeaseRecord for the caller to persist
// (lease-file.ts); replaying the records in order rebuilds the same state.
//
// Per client: free -> offered (memory only, offerSeconds) -> bound (REQUEST)
// -> released (RELEASE) or expired (time); a DECLINE drops the client's hold
// and quarantines the address for declineSeconds. A client is its client
// identifier (option 61) when it sends one, else its MAC (RFC 2131 4.2): two
// NICs with one client-id share a lease, one NIC with two client-ids has two.
// Reservations stay by MAC.
import { intToIp, ipToInt } from '../../lib/ipv4.ts';
import { AddressPlan } from './address-plan.ts';
import type { AddressPlanOptions } from './address-plan.ts';

export { LeasePoolError } from './address-plan.ts';

export type LeaseRecord =
  /** clientId (hex of option 61) is absent in journals written before it keyed leases. */
  | { mac: string; ip: string; state: 'bound' | 'released'; expires: number; hostname?: string; clientId?: string }
  | { declined: string; until: number };

/** Who asks: the MAC, and the client identifier (option 61, hex) when the client sent one. */
export interface ClientRef {
  mac: string;
  clientId?: string;
}

export type LeaseState = 'offered' | 'bound' | 'released' | 'expired';

export interface LeaseInfo {
  /** The MAC that last used the lease (with a client-id, several MACs may have). */
  mac: string;
  clientId?: string;
  ip: string;
  state: LeaseState;
  /** ISO time the lease (or offer) runs out. */
  expires: string;
  hostname?: string;
  reserved: boolean;
}

export interface LeasePoolOptions extends AddressPlanOptions {
  leaseSeconds: number;
  /** How long an offered address is held for the client (default 60 s). */
  offerSeconds?: number;
  /** How long a declined address stays out of the pool (default 600 s). */
  declineSeconds?: number;
  now?: () => number;
}

export type Grant = { ok: true; ip: string; expires: number; record?: LeaseRecord } | { ok: false; reason: string };

export type RequestKind =
  /** Answering our offer: option 54 is us, option 50 the address. */
  | 'selecting'
  /** Rebooted client checking its address: option 50, no option 54. */
  | 'init-reboot'
  /** Renewing or rebinding: the address is in ciaddr. */
  | 'renewing';

interface Hold {
  ip: number;
  expires: number;
  mac: string;
  clientId?: string;
}

interface Bound extends Hold {
  state: 'bound' | 'released';
  hostname?: string;
}

/**
 * The key of a client's lease and offer: the client-id (hex) when there is
 * one, else the MAC. They cannot collide (a MAC key has colons, hex has
 * none), so the packet's own hex string is the key: no prefixed copy to
 * build and hash per packet.
 */
export function keyOf(c: ClientRef): string {
  return c.clientId ? c.clientId : c.mac;
}

export function describeKey(key: string): string {
  return key.includes(':') ? key : `client-id ${key}`;
}

function ref(c: string | ClientRef): ClientRef {
  return typeof c === 'string' ? { mac: c } : c;
}

export class LeasePool {
  readonly subnetMask: string;
  /** The lease an OFFER promises and an ACK grants. */
  readonly leaseSeconds: number;
  private readonly start: number;
  private readonly end: number;
  private readonly mask: number;
  private readonly net: number;
  private readonly leaseMs: number;
  private readonly offerMs: number;
  private readonly declineMs: number;
  private readonly now: () => number;
  private readonly plan: AddressPlan;
  private readonly excluded: Set<number>;
  private readonly reservedByIp: Map<number, string>;
  private readonly reservedByMac: Map<string, number>;
  /** Leases and offers by client key (keyOf). */
  private readonly leases = new Map<string, Bound>();
  private readonly offers = new Map<string, Hold>();
  /** Address -> the client key last given it (lease or offer); absent means never used. */
  private readonly holders = new Map<number, string>();
  private readonly declined = new Map<number, number>();
  private cursor: number;
  /** A full sweep found no never-used address; look only at reclaimable ones until one frees up. */
  private freshExhausted = false;

  constructor(opts: LeasePoolOptions) {
    const plan = new AddressPlan(opts);
    this.plan = plan;
    this.start = plan.start;
    this.end = plan.end;
    this.mask = plan.mask;
    this.net = plan.net;
    this.excluded = plan.excluded;
    this.reservedByIp = plan.reservedByIp;
    this.reservedByMac = plan.reservedByMac;
    this.subnetMask = opts.subnetMask;
    this.leaseSeconds = opts.leaseSeconds;
    this.leaseMs = opts.leaseSeconds * 1000;
    this.offerMs = (opts.offerSeconds ?? 60) * 1000;
    this.declineMs = (opts.declineSeconds ?? 600) * 1000;
    this.now = opts.now ?? Date.now;
    this.cursor = this.start;
  }

  get size(): number {
    return this.end - this.start + 1;
  }

  /** Whether the address lies in the pool's subnet (relay and interface matching). */
  inSubnet(ip: number | string): boolean {
    const n = typeof ip === 'string' ? ipToInt(ip) : ip;
    return ((n & this.mask) >>> 0) === this.net;
  }

  /** Picks an address for a DISCOVER and holds it for the client. */
  offer(client: string | ClientRef, requested?: string): Grant {
    const c = ref(client);
    const key = this.adopt(c);
    const now = this.now();
    const pick = this.choose(key, c.mac, requested === undefined ? undefined : ipToInt(requested), now);
    if (typeof pick === 'string') return { ok: false, reason: pick };
    const expires = now + this.offerMs;
    const hold: Hold = { ip: pick, expires, mac: c.mac };
    if (c.clientId) hold.clientId = c.clientId;
    this.offers.set(key, hold);
    this.hold(key, pick);
    return { ok: true, ip: intToIp(pick), expires };
  }

  /**
   * Whether the pool has a record of the client: a lease (in any state), an
   * offer, or a reservation for its MAC. RFC 2131 4.3.2: a server without one
   * stays silent to an INIT-REBOOT REQUEST.
   */
  knows(client: string | ClientRef): boolean {
    const c = ref(client);
    const key = this.adopt(c);
    return this.leases.has(key) || this.offers.has(key) || this.reservedByMac.has(c.mac);
  }

  /** The client took another server's offer (RFC 2131 4.3.2): its offered address goes back to the pool. */
  withdraw(client: string | ClientRef): void {
    const key = keyOf(ref(client));
    const o = this.offers.get(key);
    if (!o) return;
    this.offers.delete(key);
    this.unlink(key, o.ip);
  }

  /** Decides a REQUEST: a bound lease (ACK) or the reason to NAK. */
  request(client: string | ClientRef, ip: string, kind: RequestKind, hostname?: string): Grant {
    const c = ref(client);
    const key = this.adopt(c);
    const now = this.now();
    const n = ipToInt(ip);
    if (kind === 'selecting') {
      if (this.offers.get(key)?.ip !== n && this.leases.get(key)?.ip !== n) return { ok: false, reason: `${ip} was not offered to this client` };
    } else {
      const reserved = this.reservedByMac.get(c.mac);
      if (reserved !== undefined && reserved !== n && this.unusable(reserved, key, c.mac, now) === undefined) {
        return { ok: false, reason: `this client's reserved address is ${intToIp(reserved)}` };
      }
      // RFC 2131 4.3.2: a client whose notion of its address is wrong gets a NAK.
      const lease = this.leases.get(key);
      if (lease && lease.ip !== n && lease.state === 'bound' && lease.expires > now) {
        return { ok: false, reason: `this client's lease is for ${intToIp(lease.ip)}` };
      }
    }
    const why = this.unusable(n, key, c.mac, now);
    if (why) return { ok: false, reason: `${ip} ${why}` };
    const expires = now + this.leaseMs;
    const lease: Bound = { ip: n, expires, state: 'bound', mac: c.mac };
    if (c.clientId) lease.clientId = c.clientId;
    if (hostname) lease.hostname = hostname;
    this.bind(key, lease);
    return { ok: true, ip, expires, record: toRecord(lease) };
  }

  /** RELEASE: the record to persist, or undefined when the client holds no such lease. */
  release(client: string | ClientRef, ip: string): LeaseRecord | undefined {
    const key = this.adopt(ref(client));
    const lease = this.leases.get(key);
    if (!lease || lease.ip !== ipToInt(ip) || lease.state !== 'bound') return undefined;
    lease.state = 'released';
    lease.expires = this.now();
    this.offers.delete(key);
    return toRecord(lease);
  }

  /** DECLINE: the address is in use by someone else; quarantine it. */
  decline(client: string | ClientRef, ip: string): LeaseRecord | undefined {
    const key = this.adopt(ref(client));
    const n = ipToInt(ip);
    if (this.offers.get(key)?.ip !== n && this.leases.get(key)?.ip !== n) return undefined;
    const until = this.now() + this.declineMs;
    this.applyDecline(n, until);
    return { declined: ip, until };
  }

  /** Replays persisted records (in order) into the pool; returns how many were dropped as outside the subnet. */
  restore(records: Iterable<LeaseRecord>): number {
    let dropped = 0;
    for (const r of records) {
      if ('declined' in r) {
        const n = ipToInt(r.declined);
        if (this.inSubnet(n)) this.applyDecline(n, r.until);
        else dropped++;
        continue;
      }
      const n = ipToInt(r.ip);
      if (!this.inSubnet(n)) {
        dropped++;
        continue;
      }
      const lease: Bound = { ip: n, expires: r.expires, state: r.state, mac: r.mac };
      if (r.hostname) lease.hostname = r.hostname;
      if (r.clientId) lease.clientId = r.clientId;
      this.bind(keyOf(lease), lease);
    }
    return dropped;
  }

  /** The state as records, for a compacted snapshot. Offers are not persisted. */
  records(): LeaseRecord[] {
    return [...this.eachRecord()];
  }

  /** records() one at a time: a snapshot of 50,000 leases need not hold 50,000 record objects at once. */
  *eachRecord(): Generator<LeaseRecord> {
    const now = this.now();
    for (const l of this.leases.values()) yield toRecord(l);
    for (const [ip, until] of this.declined) if (until > now) yield { declined: intToIp(ip), until };
  }

  list(): LeaseInfo[] {
    return [...this.each()];
  }

  /**
   * The leases and live offers one at a time, as list() gives them, so that a
   * caller can yield to the event loop between them (listing 10,000 at once
   * blocks for tens of ms). Changes made meanwhile may or may not show.
   */
  *each(): Generator<LeaseInfo> {
    const now = this.now();
    const info = (h: Hold, state: LeaseState): LeaseInfo => {
      const i: LeaseInfo = { mac: h.mac, ip: intToIp(h.ip), state, expires: new Date(h.expires).toISOString(), reserved: this.reservedByMac.get(h.mac) === h.ip };
      if (h.clientId) i.clientId = h.clientId;
      return i;
    };
    for (const l of this.leases.values()) {
      const i = info(l, l.state === 'bound' && l.expires <= now ? 'expired' : l.state);
      if (l.hostname) i.hostname = l.hostname;
      yield i;
    }
    for (const [key, o] of this.offers) {
      if (o.expires <= now || this.leases.get(key)?.ip === o.ip) continue;
      yield info(o, 'offered');
    }
  }

  /** Drops offers that ran out (they otherwise linger in memory). */
  sweep(): void {
    const now = this.now();
    for (const [key, o] of this.offers) {
      if (o.expires > now) continue;
      this.offers.delete(key);
      this.unlink(key, o.ip);
    }
    for (const [ip, until] of this.declined) {
      if (until > now) continue;
      this.declined.delete(ip);
      this.freshExhausted = false;
    }
  }

  /**
   * The client's key, after handing it the lease its MAC held without a
   * client-id (journals from before client-ids keyed leases, or a client that
   * started sending one): the same machine keeps its address.
   */
  private adopt(c: ClientRef): string {
    const key = keyOf(c);
    if (key === c.mac || this.leases.has(key) || this.offers.has(key)) return key;
    const old = this.leases.get(c.mac);
    if (old && old.clientId === undefined) {
      this.leases.delete(c.mac);
      old.clientId = c.clientId;
      this.leases.set(key, old);
      if (this.holders.get(old.ip) === c.mac) this.holders.set(old.ip, key);
    }
    return key;
  }

  private choose(key: string, mac: string, requested: number | undefined, now: number): number | string {
    const reserved = this.reservedByMac.get(mac);
    if (reserved !== undefined && this.unusable(reserved, key, mac, now) === undefined) return reserved;
    const offer = this.offers.get(key);
    if (offer && this.unusable(offer.ip, key, mac, now) === undefined) return offer.ip;
    const lease = this.leases.get(key);
    if (lease && this.unusable(lease.ip, key, mac, now) === undefined) return lease.ip;
    if (requested !== undefined && requested >= this.start && requested <= this.end && this.unusable(requested, key, mac, now) === undefined) {
      return requested;
    }
    const fresh = this.freshExhausted ? undefined : this.nextFresh();
    if (fresh !== undefined) return fresh;
    const old = this.oldestReclaimable(key, mac, now);
    if (old !== undefined) return old;
    return this.plan.exhausted();
  }

  /** Why the client (`key`, with its `mac` for reservations) may not have address `n` now, or undefined when it may. */
  private unusable(n: number, key: string, mac: string, now: number): string | undefined {
    const fixed = this.plan.forbids(n, mac);
    if (fixed !== undefined) return fixed;
    const until = this.declined.get(n);
    if (until !== undefined && until > now) return 'was declined (in use on the network)';
    const holder = this.holders.get(n);
    if (holder !== undefined && holder !== key && this.active(holder, n, now)) return `is leased to ${describeKey(holder)}`;
    return undefined;
  }

  private active(key: string, n: number, now: number): boolean {
    const l = this.leases.get(key);
    if (l && l.ip === n && l.state === 'bound' && l.expires > now) return true;
    const o = this.offers.get(key);
    return o !== undefined && o.ip === n && o.expires > now;
  }

  private nextFresh(): number | undefined {
    const size = this.size;
    for (let i = 0; i < size; i++) {
      const n = this.cursor;
      this.cursor = n >= this.end ? this.start : n + 1;
      if (!this.holders.has(n) && !this.excluded.has(n) && !this.reservedByIp.has(n) && !this.declined.has(n)) return n;
    }
    this.freshExhausted = true;
    return undefined;
  }

  /** The address whose holder let go longest ago (expired or released); linear, only once the pool has no fresh address. */
  private oldestReclaimable(key: string, mac: string, now: number): number | undefined {
    let best: number | undefined;
    let bestTime = Infinity;
    for (const [n, holder] of this.holders) {
      if (n < this.start || n > this.end || this.unusable(n, key, mac, now) !== undefined) continue;
      const t = Math.max(this.leases.get(holder)?.expires ?? 0, this.offers.get(holder)?.expires ?? 0);
      if (t < bestTime) {
        bestTime = t;
        best = n;
      }
    }
    return best;
  }

  private bind(key: string, lease: Bound): void {
    const prev = this.leases.get(key);
    const offer = this.offers.get(key);
    this.leases.set(key, lease);
    this.offers.delete(key);
    if (prev && prev.ip !== lease.ip) this.unlink(key, prev.ip);
    if (offer && offer.ip !== lease.ip) this.unlink(key, offer.ip);
    this.hold(key, lease.ip);
  }

  /** Makes client `key` the holder of `n`, evicting a previous holder's stale claim on it. */
  private hold(key: string, n: number): void {
    const prev = this.holders.get(n);
    if (prev !== undefined && prev !== key) {
      if (this.leases.get(prev)?.ip === n) this.leases.delete(prev);
      if (this.offers.get(prev)?.ip === n) this.offers.delete(prev);
    }
    this.holders.set(n, key);
  }

  /** Forgets that client `key` held `n` once nothing of it refers to `n`, returning it to the fresh addresses. */
  private unlink(key: string, n: number): void {
    if (this.holders.get(n) !== key) return;
    if (this.leases.get(key)?.ip === n || this.offers.get(key)?.ip === n) return;
    this.holders.delete(n);
    this.freshExhausted = false;
  }

  private applyDecline(n: number, until: number): void {
    this.declined.set(n, until);
    const holder = this.holders.get(n);
    if (holder !== undefined) {
      if (this.leases.get(holder)?.ip === n) this.leases.delete(holder);
      if (this.offers.get(holder)?.ip === n) this.offers.delete(holder);
      this.holders.delete(n);
    }
  }
}

function toRecord(l: Bound): LeaseRecord {
  const r: LeaseRecord = { mac: l.mac, ip: intToIp(l.ip), state: l.state, expires: l.expires };
  if (l.hostname) r.hostname = l.hostname;
  if (l.clientId) r.clientId = l.clientId;
  return r;
}
