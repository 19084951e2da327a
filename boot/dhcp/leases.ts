// The full-mode address pool: reservations, offers, leases and declined
// addresses, as an in-memory state machine with no I/O. Every change that must
// survive a restart comes back as a LeaseRecord for the caller to persist
// (lease-file.ts); replaying the records in order rebuilds the same state.
//
// Per client (keyed by MAC): free -> offered (memory only, offerSeconds)
// -> bound (REQUEST) -> released (RELEASE) or expired (time); a DECLINE drops
// the client's hold and quarantines the address for declineSeconds.

export type LeaseRecord =
  | { mac: string; ip: string; state: 'bound' | 'released'; expires: number; hostname?: string }
  | { declined: string; until: number };

export type LeaseState = 'offered' | 'bound' | 'released' | 'expired';

export interface LeaseInfo {
  mac: string;
  ip: string;
  state: LeaseState;
  /** ISO time the lease (or offer) runs out. */
  expires: string;
  hostname?: string;
  reserved: boolean;
}

export interface LeasePoolOptions {
  start: string;
  end: string;
  subnetMask: string;
  leaseSeconds: number;
  /** How long an offered address is held for the client (default 60 s). */
  offerSeconds?: number;
  /** How long a declined address stays out of the pool (default 600 s). */
  declineSeconds?: number;
  /** Addresses never handed out (the server's own, the router). */
  exclude?: string[];
  /** MAC -> IP reservations; the address may lie outside start..end but inside the subnet. */
  reservations?: Iterable<[string, string]>;
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
}

interface Bound extends Hold {
  state: 'bound' | 'released';
  hostname?: string;
}

export class LeasePoolError extends Error {}

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export class LeasePool {
  readonly subnetMask: string;
  private readonly start: number;
  private readonly end: number;
  private readonly mask: number;
  private readonly net: number;
  private readonly leaseMs: number;
  private readonly offerMs: number;
  private readonly declineMs: number;
  private readonly now: () => number;
  private readonly excluded = new Set<number>();
  private readonly reservedByIp = new Map<number, string>();
  private readonly reservedByMac = new Map<string, number>();
  private readonly leases = new Map<string, Bound>();
  private readonly offers = new Map<string, Hold>();
  /** Address -> the MAC last given it (lease or offer); absent means never used. */
  private readonly holders = new Map<number, string>();
  private readonly declined = new Map<number, number>();
  private cursor: number;
  /** A full sweep found no never-used address; look only at reclaimable ones until one frees up. */
  private freshExhausted = false;

  constructor(opts: LeasePoolOptions) {
    this.start = ipToInt(opts.start);
    this.end = ipToInt(opts.end);
    this.mask = ipToInt(opts.subnetMask);
    this.subnetMask = opts.subnetMask;
    this.net = (this.start & this.mask) >>> 0;
    if (((this.end & this.mask) >>> 0) !== this.net) {
      throw new LeasePoolError(`pool ${opts.start}-${opts.end} does not fit in one subnet with mask ${opts.subnetMask}`);
    }
    if (this.start > this.end) throw new LeasePoolError(`pool start ${opts.start} is after pool end ${opts.end}`);
    this.leaseMs = opts.leaseSeconds * 1000;
    this.offerMs = (opts.offerSeconds ?? 60) * 1000;
    this.declineMs = (opts.declineSeconds ?? 600) * 1000;
    this.now = opts.now ?? Date.now;
    this.cursor = this.start;
    // The network and broadcast addresses are never a host's.
    this.excluded.add(this.net);
    this.excluded.add((this.net | ~this.mask) >>> 0);
    for (const ip of opts.exclude ?? []) this.excluded.add(ipToInt(ip));
    for (const [mac, ip] of opts.reservations ?? []) {
      const n = ipToInt(ip);
      if (!this.inSubnet(n)) throw new LeasePoolError(`reservation ${ip} for ${mac} is outside the pool's subnet ${intToIp(this.net)}/${opts.subnetMask}`);
      const other = this.reservedByIp.get(n);
      if (other && other !== mac) throw new LeasePoolError(`address ${ip} is reserved for both ${other} and ${mac}`);
      this.reservedByIp.set(n, mac);
      this.reservedByMac.set(mac, n);
    }
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
  offer(mac: string, requested?: string): Grant {
    const now = this.now();
    const pick = this.choose(mac, requested === undefined ? undefined : ipToInt(requested), now);
    if (typeof pick === 'string') return { ok: false, reason: pick };
    const expires = now + this.offerMs;
    this.offers.set(mac, { ip: pick, expires });
    this.hold(mac, pick);
    return { ok: true, ip: intToIp(pick), expires };
  }

  /** Decides a REQUEST: a bound lease (ACK) or the reason to NAK. */
  request(mac: string, ip: string, kind: RequestKind, hostname?: string): Grant {
    const now = this.now();
    const n = ipToInt(ip);
    if (kind === 'selecting') {
      if (this.offers.get(mac)?.ip !== n && this.leases.get(mac)?.ip !== n) return { ok: false, reason: `${ip} was not offered to this client` };
    } else {
      const reserved = this.reservedByMac.get(mac);
      if (reserved !== undefined && reserved !== n && this.unusable(reserved, mac, now) === undefined) {
        return { ok: false, reason: `this client's reserved address is ${intToIp(reserved)}` };
      }
    }
    const why = this.unusable(n, mac, now);
    if (why) return { ok: false, reason: `${ip} ${why}` };
    const expires = now + this.leaseMs;
    const lease: Bound = { ip: n, expires, state: 'bound' };
    if (hostname) lease.hostname = hostname;
    this.bind(mac, lease);
    const record: LeaseRecord = { mac, ip, state: 'bound', expires };
    if (hostname) record.hostname = hostname;
    return { ok: true, ip, expires, record };
  }

  /** RELEASE: the record to persist, or undefined when the client holds no such lease. */
  release(mac: string, ip: string): LeaseRecord | undefined {
    const lease = this.leases.get(mac);
    if (!lease || lease.ip !== ipToInt(ip) || lease.state !== 'bound') return undefined;
    lease.state = 'released';
    lease.expires = this.now();
    this.offers.delete(mac);
    const record: LeaseRecord = { mac, ip, state: 'released', expires: lease.expires };
    if (lease.hostname) record.hostname = lease.hostname;
    return record;
  }

  /** DECLINE: the address is in use by someone else; quarantine it. */
  decline(mac: string, ip: string): LeaseRecord | undefined {
    const n = ipToInt(ip);
    if (this.offers.get(mac)?.ip !== n && this.leases.get(mac)?.ip !== n) return undefined;
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
      const lease: Bound = { ip: n, expires: r.expires, state: r.state };
      if (r.hostname) lease.hostname = r.hostname;
      this.bind(r.mac, lease);
    }
    return dropped;
  }

  /** The state as records, for a compacted snapshot. Offers are not persisted. */
  records(): LeaseRecord[] {
    const now = this.now();
    const out: LeaseRecord[] = [];
    for (const [mac, l] of this.leases) {
      const r: LeaseRecord = { mac, ip: intToIp(l.ip), state: l.state, expires: l.expires };
      if (l.hostname) r.hostname = l.hostname;
      out.push(r);
    }
    for (const [ip, until] of this.declined) if (until > now) out.push({ declined: intToIp(ip), until });
    return out;
  }

  list(): LeaseInfo[] {
    const now = this.now();
    const out: LeaseInfo[] = [];
    for (const [mac, l] of this.leases) {
      const info: LeaseInfo = {
        mac,
        ip: intToIp(l.ip),
        state: l.state === 'bound' && l.expires <= now ? 'expired' : l.state,
        expires: new Date(l.expires).toISOString(),
        reserved: this.reservedByMac.get(mac) === l.ip,
      };
      if (l.hostname) info.hostname = l.hostname;
      out.push(info);
    }
    for (const [mac, o] of this.offers) {
      if (o.expires <= now || this.leases.get(mac)?.ip === o.ip) continue;
      out.push({ mac, ip: intToIp(o.ip), state: 'offered', expires: new Date(o.expires).toISOString(), reserved: this.reservedByMac.get(mac) === o.ip });
    }
    return out;
  }

  /** Drops offers that ran out (they otherwise linger in memory). */
  sweep(): void {
    const now = this.now();
    for (const [mac, o] of this.offers) {
      if (o.expires > now) continue;
      this.offers.delete(mac);
      this.unlink(mac, o.ip);
    }
    for (const [ip, until] of this.declined) {
      if (until > now) continue;
      this.declined.delete(ip);
      this.freshExhausted = false;
    }
  }

  private choose(mac: string, requested: number | undefined, now: number): number | string {
    const reserved = this.reservedByMac.get(mac);
    if (reserved !== undefined && this.unusable(reserved, mac, now) === undefined) return reserved;
    const offer = this.offers.get(mac);
    if (offer && this.unusable(offer.ip, mac, now) === undefined) return offer.ip;
    const lease = this.leases.get(mac);
    if (lease && this.unusable(lease.ip, mac, now) === undefined) return lease.ip;
    if (requested !== undefined && requested >= this.start && requested <= this.end && this.unusable(requested, mac, now) === undefined) {
      return requested;
    }
    const fresh = this.freshExhausted ? undefined : this.nextFresh();
    if (fresh !== undefined) return fresh;
    const old = this.oldestReclaimable(mac, now);
    if (old !== undefined) return old;
    return `address pool ${intToIp(this.start)}-${intToIp(this.end)} is exhausted`;
  }

  /** Why `mac` may not have address `n` now, or undefined when it may. */
  private unusable(n: number, mac: string, now: number): string | undefined {
    if (!this.inSubnet(n)) return 'is not in the pool subnet';
    if (this.excluded.has(n)) return 'is reserved for the network or a server';
    const reservedFor = this.reservedByIp.get(n);
    if (reservedFor !== undefined && reservedFor !== mac) return `is reserved for ${reservedFor}`;
    if (reservedFor === undefined && (n < this.start || n > this.end)) return 'is outside the pool range';
    const until = this.declined.get(n);
    if (until !== undefined && until > now) return 'was declined (in use on the network)';
    const holder = this.holders.get(n);
    if (holder !== undefined && holder !== mac && this.active(holder, n, now)) return `is leased to ${holder}`;
    return undefined;
  }

  private active(mac: string, n: number, now: number): boolean {
    const l = this.leases.get(mac);
    if (l && l.ip === n && l.state === 'bound' && l.expires > now) return true;
    const o = this.offers.get(mac);
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
  private oldestReclaimable(mac: string, now: number): number | undefined {
    let best: number | undefined;
    let bestTime = Infinity;
    for (const [n, holder] of this.holders) {
      if (n < this.start || n > this.end || this.unusable(n, mac, now) !== undefined) continue;
      const t = Math.max(this.leases.get(holder)?.expires ?? 0, this.offers.get(holder)?.expires ?? 0);
      if (t < bestTime) {
        bestTime = t;
        best = n;
      }
    }
    return best;
  }

  private bind(mac: string, lease: Bound): void {
    const prev = this.leases.get(mac);
    const offer = this.offers.get(mac);
    this.leases.set(mac, lease);
    this.offers.delete(mac);
    if (prev && prev.ip !== lease.ip) this.unlink(mac, prev.ip);
    if (offer && offer.ip !== lease.ip) this.unlink(mac, offer.ip);
    this.hold(mac, lease.ip);
  }

  /** Makes `mac` the holder of `n`, evicting a previous holder's stale claim on it. */
  private hold(mac: string, n: number): void {
    const prev = this.holders.get(n);
    if (prev !== undefined && prev !== mac) {
      if (this.leases.get(prev)?.ip === n) this.leases.delete(prev);
      if (this.offers.get(prev)?.ip === n) this.offers.delete(prev);
    }
    this.holders.set(n, mac);
  }

  /** Forgets that `mac` held `n` once nothing of `mac` refers to it, returning it to the fresh addresses. */
  private unlink(mac: string, n: number): void {
    if (this.holders.get(n) !== mac) return;
    if (this.leases.get(mac)?.ip === n || this.offers.get(mac)?.ip === n) return;
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
