// What a pool's configuration alone says about an address: its subnet, its
// range, the addresses never handed out (network, broadcast, the server's own,
// the router) and the reservations by MAC. Both lease backends (leases.ts in
// memory, lease-pg.ts in PostgreSQL) ask it before they look at their state.
import { intToIp, ipToInt } from '../../lib/ipv4.ts';

export class LeasePoolError extends Error {}

export interface AddressPlanOptions {
  start: string;
  end: string;
  subnetMask: string;
  /** Addresses never handed out (the server's own, the router). */
  exclude?: string[];
  /** MAC -> IP reservations; the address may lie outside start..end but inside the subnet. */
  reservations?: Iterable<[string, string]>;
}

export class AddressPlan {
  readonly start: number;
  readonly end: number;
  readonly mask: number;
  readonly net: number;
  readonly excluded = new Set<number>();
  readonly reservedByIp = new Map<number, string>();
  readonly reservedByMac = new Map<string, number>();

  constructor(opts: AddressPlanOptions) {
    this.start = ipToInt(opts.start);
    this.end = ipToInt(opts.end);
    this.mask = ipToInt(opts.subnetMask);
    this.net = (this.start & this.mask) >>> 0;
    if (((this.end & this.mask) >>> 0) !== this.net) {
      throw new LeasePoolError(`pool ${opts.start}-${opts.end} does not fit in one subnet with mask ${opts.subnetMask}`);
    }
    if (this.start > this.end) throw new LeasePoolError(`pool start ${opts.start} is after pool end ${opts.end}`);
    // The network and broadcast addresses are never a host's.
    this.excluded.add(this.net);
    this.excluded.add((this.net | ~this.mask) >>> 0);
    for (const ip of opts.exclude ?? []) this.excluded.add(ipToInt(ip));
    for (const [mac, ip] of opts.reservations ?? []) {
      const n = ipToInt(ip);
      if (!this.inSubnet(n)) throw new LeasePoolError(`reservation ${ip} for ${mac} is outside the pool's subnet ${this.cidr}`);
      const other = this.reservedByIp.get(n);
      if (other && other !== mac) throw new LeasePoolError(`address ${ip} is reserved for both ${other} and ${mac}`);
      this.reservedByIp.set(n, mac);
      this.reservedByMac.set(mac, n);
    }
  }

  /** "10.0.0.0/255.255.255.0": names the pool's network (the PostgreSQL table keys leases by it). */
  get cidr(): string {
    return `${intToIp(this.net)}/${intToIp(this.mask)}`;
  }

  get size(): number {
    return this.end - this.start + 1;
  }

  inSubnet(n: number): boolean {
    return ((n & this.mask) >>> 0) === this.net;
  }

  /** Whether `n` may be handed out dynamically: in the range, not excluded, not anyone's reservation. */
  dynamic(n: number): boolean {
    return n >= this.start && n <= this.end && !this.excluded.has(n) && !this.reservedByIp.has(n);
  }

  /** Why the configuration forbids `n` to the client with `mac`, or undefined when it allows it. */
  forbids(n: number, mac: string): string | undefined {
    if (!this.inSubnet(n)) return 'is not in the pool subnet';
    if (this.excluded.has(n)) return 'is reserved for the network or a server';
    const reservedFor = this.reservedByIp.get(n);
    if (reservedFor !== undefined && reservedFor !== mac) return `is reserved for ${reservedFor}`;
    if (reservedFor === undefined && (n < this.start || n > this.end)) return 'is outside the pool range';
    return undefined;
  }

  exhausted(): string {
    return `address pool ${intToIp(this.start)}-${intToIp(this.end)} is exhausted`;
  }
}
