// Which address each MAC holds from our DHCP server (full mode), kept from
// the timeline's ACKs so that the check costs a map lookup, not a scan of
// every lease. One address belongs to one MAC: an ACK handing an address to
// a new MAC takes it from the old one. A release, decline or NAK forgets the
// MAC (wrongly forgetting only makes the label check stricter).
import type { BootEvent } from './timeline.ts';
import { normalizeMac } from '../lib/mac.ts';

export const MAX_MACHINES = 10_000;

export class LeasedAddresses {
  private readonly ipByMac = new Map<string, string>();
  private readonly macByIp = new Map<string, string>();
  private readonly max: number;

  constructor(max = MAX_MACHINES) {
    this.max = max;
  }

  /** Seeds from the lease pool (leases restored from disk have no ACK on the timeline). */
  seed(leases: Iterable<{ mac: string; ip: string; state?: string }>): void {
    for (const l of leases) if (l.state === undefined || l.state === 'bound') this.set(l.mac, l.ip);
  }

  observe(e: BootEvent): void {
    if (e.kind === 'dhcp.ack' && typeof e.detail?.ip === 'string') this.set(e.mac, e.detail.ip);
    else if (e.kind === 'dhcp.release' || e.kind === 'dhcp.decline' || e.kind === 'dhcp.nak') this.forget(e.mac);
  }

  ipOf(mac: string): string | undefined {
    return this.ipByMac.get(mac);
  }

  /** The MAC our DHCP server gave `ip` to (TFTP names its transfers by it). */
  macOf(ip: string): string | undefined {
    return this.macByIp.get(ip);
  }

  private set(rawMac: string, ip: string): void {
    const mac = normalizeMac(rawMac);
    if (!mac) return;
    this.forget(mac);
    const previous = this.macByIp.get(ip);
    if (previous !== undefined) this.ipByMac.delete(previous);
    if (this.ipByMac.size >= this.max) {
      const oldest = this.ipByMac.keys().next().value;
      if (oldest !== undefined) this.forget(oldest);
    }
    this.ipByMac.set(mac, ip);
    this.macByIp.set(ip, mac);
  }

  private forget(mac: string): void {
    const ip = this.ipByMac.get(mac);
    if (ip === undefined) return;
    this.ipByMac.delete(mac);
    if (this.macByIp.get(ip) === mac) this.macByIp.delete(ip);
  }
}

/** The client's IPv4 address as a lease names it (a dual-stack socket reports ::ffff:a.b.c.d). */
export function clientIpv4(remote: string | undefined): string {
  return (remote ?? '').replace(/^::ffff:/i, '');
}
