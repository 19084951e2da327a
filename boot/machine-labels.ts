// What each protocol learned about a machine's labels (DHCP: the UUID of
// option 97 and the architecture; iPXE: everything it reports), kept per
// MAC so that selection gives the same profile wherever it runs: at DHCP
// time (which boot program), in the iPXE script, in GRUB's configuration
// and in the API. Bounded: the least recently noted MAC goes first.
import { LABELS } from './selection.ts';
import type { Labels } from './selection.ts';

export const MAX_MACHINES = 10_000;

export class MachineLabels {
  private readonly byMac = new Map<string, Labels>();
  private readonly max: number;

  constructor(max = MAX_MACHINES) {
    this.max = max;
  }

  /** Merges `labels` into what is known of `mac` (newer values win). */
  note(mac: string, labels: Labels): void {
    const known = this.byMac.get(mac);
    const merged: Labels = { ...known, ...labels, mac };
    if (known && LABELS.every((k) => known[k] === merged[k])) return;
    this.byMac.delete(mac);
    if (this.byMac.size >= this.max) {
      const oldest = this.byMac.keys().next().value;
      if (oldest !== undefined) this.byMac.delete(oldest);
    }
    this.byMac.set(mac, merged);
  }

  get(mac: string): Labels | undefined {
    return this.byMac.get(mac);
  }
}
