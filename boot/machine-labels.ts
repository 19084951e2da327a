// What each protocol learned about a machine's labels (DHCP: the UUID of
// option 97 and the architecture; iPXE: everything it reports), kept per
// MAC so that selection gives the same profile wherever it runs: at DHCP
// time (which boot program), in the iPXE script, in GRUB's configuration
// and in the API. Bounded: the least recently changed MAC goes first.
import { LABELS } from './selection.ts';
import type { Labels } from './selection.ts';
import { RecencyMap } from './recency-map.ts';

export const MAX_MACHINES = 10_000;

export class MachineLabels {
  private readonly byMac = new RecencyMap<Labels>();
  private readonly max: number;
  private readonly listeners = new Set<(mac: string, labels: Labels) => void>();

  constructor(max = MAX_MACHINES) {
    this.max = max;
  }

  /** Merges `labels` into what is known of `mac` (newer values win). */
  note(mac: string, labels: Labels): void {
    const known = this.byMac.peek(mac);
    // DHCP notes the same labels on every packet of a machine: that changes nothing and allocates nothing.
    if (known && !changes(known, labels)) return;
    if (!known && this.byMac.size >= this.max) {
      const oldest = this.byMac.oldest();
      if (oldest?.mac) this.byMac.delete(oldest.mac);
    }
    const merged = { ...known, ...labels, mac };
    this.byMac.set(mac, merged);
    for (const l of this.listeners) l(mac, merged);
  }

  /** Calls `listener` with a MAC's labels each time they change (the DHCP thread keeps a copy). */
  subscribe(listener: (mac: string, labels: Labels) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every MAC's labels, least recently changed first. */
  entries(): Iterable<[string, Labels]> {
    return this.byMac.entries();
  }

  get(mac: string): Labels | undefined {
    return this.byMac.peek(mac);
  }
}

/** Whether merging `labels` into `known` would change a label (the merge lets a key set to undefined win, so that counts). */
function changes(known: Labels, labels: Labels): boolean {
  for (const k of LABELS) if (k !== 'mac' && k in labels && labels[k] !== known[k]) return true;
  return false;
}
