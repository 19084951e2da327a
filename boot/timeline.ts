// Boot-event timeline per MAC: what the server saw and did for each machine,
// including packets it ignored and why. Bounded so a noisy network cannot
// grow it without limit.

export type BootEventKind =
  | 'dhcp.discover' | 'dhcp.offer' | 'dhcp.request' | 'dhcp.ack' | 'dhcp.nak'
  | 'dhcp.decline' | 'dhcp.release' | 'dhcp.inform' | 'dhcp.ignored'
  | 'tftp.request' | 'tftp.done' | 'tftp.error'
  | 'http.script' | 'http.kernel' | 'http.initrd' | 'http.artifact' | 'http.error'
  | 'grub.config' | 'grub.error';

export interface BootEvent {
  time: string;
  mac: string;
  kind: BootEventKind;
  /** Free-form facts: file name, address, boot file, client class... */
  detail?: Record<string, string | number | boolean>;
  /** Set when the server ignored a packet or refused a request. */
  reason?: string;
}

export interface TimelineLimits {
  eventsPerMachine: number;
  machines: number;
}

export type TimelineListener = (event: BootEvent) => void;

export class BootTimeline {
  private readonly byMac = new Map<string, BootEvent[]>();
  private readonly limits: TimelineLimits;
  private readonly listeners = new Set<TimelineListener>();
  private readonly now: () => Date;

  constructor(limits: Partial<TimelineLimits> = {}, now: () => Date = () => new Date()) {
    this.limits = { eventsPerMachine: 500, machines: 10_000, ...limits };
    this.now = now;
  }

  record(mac: string, kind: BootEventKind, detail?: BootEvent['detail'], reason?: string): BootEvent {
    const key = normalizeMac(mac) ?? mac.toLowerCase();
    const event: BootEvent = { time: this.now().toISOString(), mac: key, kind };
    if (detail) event.detail = detail;
    if (reason) event.reason = reason;
    let list = this.byMac.get(key);
    if (!list) {
      if (this.byMac.size >= this.limits.machines) {
        // Drop the machine seen least recently (Map keeps insertion order).
        const oldest = this.byMac.keys().next().value;
        if (oldest !== undefined) this.byMac.delete(oldest);
      }
      list = [];
    } else {
      this.byMac.delete(key);
    }
    this.byMac.set(key, list);
    list.push(event);
    if (list.length > this.limits.eventsPerMachine) list.splice(0, list.length - this.limits.eventsPerMachine);
    for (const l of this.listeners) l(event);
    return event;
  }

  events(mac: string): BootEvent[] {
    return [...(this.byMac.get(normalizeMac(mac) ?? mac.toLowerCase()) ?? [])];
  }

  machines(): { mac: string; events: number; last: BootEvent }[] {
    const out: { mac: string; events: number; last: BootEvent }[] = [];
    for (const [mac, list] of this.byMac) {
      const last = list[list.length - 1];
      if (last) out.push({ mac, events: list.length, last });
    }
    return out;
  }

  /** Like machines(), one at a time, so a caller can yield to the event loop between machines. */
  *eachMachine(): Generator<{ mac: string; events: number; last: BootEvent }> {
    for (const [mac, list] of this.byMac) {
      const last = list[list.length - 1];
      if (last) yield { mac, events: list.length, last };
    }
  }

  subscribe(listener: TimelineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** Accepts aa:bb:.., aa-bb-.., aabb.ccdd.., returns lower-case colon form or undefined. */
export function normalizeMac(input: string): string | undefined {
  // Servers pass the canonical form on every packet: answer it without rebuilding.
  if (CANONICAL_MAC.test(input)) return input;
  const hex = input.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (hex.length !== 12 || !/^[0-9a-f:.-]+$/i.test(input)) return undefined;
  return hex.match(/../g)!.join(':');
}
