// Machine selection: which profile a machine boots. Groups carry label
// selectors; the group whose selector names the most labels (and matches)
// wins, as in matchbox. A per-MAC machine entry beats every group.
import { normalizeMac } from '../lib/mac.ts';
import type { Profile } from '../lib/profile.ts';

export type { Profile };

export const LABELS = ['mac', 'uuid', 'hostname', 'arch', 'serial'] as const;
export type Label = (typeof LABELS)[number];
export type Labels = Partial<Record<Label, string>>;

export interface Group {
  name: string;
  profile: string;
  selector: Labels;
  /** Arguments merged over the profile's (e.g. a rack's farmer_id). */
  args?: Record<string, string | number | null>;
}

export interface MachineOverride {
  mac: string;
  profile?: string;
  args?: Record<string, string | number | null>;
  /** Forces the DHCP boot file for this MAC (classifier override). */
  bootfile?: string;
  hostname?: string;
  /** Full-mode reservation. */
  ip?: string;
}

export interface Selection {
  profile: Profile;
  group?: string;
  /** Merged kernel arguments: profile, then group, then machine. */
  args: Record<string, string | number | null>;
  reason: string;
}

export class NoProfileError extends Error {}

/** Canonical form of a label value, so "52-54-00-..." matches "52:54:00:...". */
export function canonicalLabel(label: Label, value: string): string {
  if (label === 'mac') return normalizeMac(value) ?? value.toLowerCase();
  if (label === 'uuid') return value.toLowerCase();
  return value;
}

export function matches(selector: Labels, labels: Labels): boolean {
  for (const key of LABELS) {
    const want = selector[key];
    if (want === undefined) continue;
    const have = labels[key];
    if (have === undefined || canonicalLabel(key, have) !== canonicalLabel(key, want)) return false;
  }
  return true;
}

function specificity(selector: Labels): number {
  return LABELS.filter((k) => selector[k] !== undefined).length;
}

export interface Selector {
  select(labels: Labels): Selection;
  machine(mac: string): MachineOverride | undefined;
}

export function createSelector(profiles: Profile[], groups: Group[], machines: MachineOverride[]): Selector {
  const byName = new Map(profiles.map((p) => [p.name, p]));
  const byMac = new Map(machines.map((m) => [normalizeMac(m.mac) ?? m.mac, m]));
  // Most specific first; ties keep file order so the YAML author decides.
  const ordered = groups
    .map((g, i) => ({ g, i, s: specificity(g.selector) }))
    .sort((a, b) => b.s - a.s || a.i - b.i)
    .map((x) => x.g);

  return {
    machine: (mac) => byMac.get(normalizeMac(mac) ?? mac),
    select(labels) {
      const mac = labels.mac ? normalizeMac(labels.mac) : undefined;
      const m = mac ? byMac.get(mac) : undefined;
      const group = ordered.find((g) => matches(g.selector, labels));
      const profileName = m?.profile ?? group?.profile;
      if (!profileName) throw new NoProfileError(`no group or machine entry selects a profile for ${describe(labels)}`);
      const profile = byName.get(profileName);
      if (!profile) throw new NoProfileError(`profile "${profileName}" is not defined`);
      const args = { ...profile.args, ...(m?.profile ? {} : group?.args), ...m?.args };
      const reason = m?.profile ? `machine entry for ${mac}` : `group ${group!.name}`;
      return { profile, group: m?.profile ? undefined : group?.name, args, reason };
    },
  };
}

function describe(labels: Labels): string {
  return LABELS.filter((k) => labels[k]).map((k) => `${k}=${labels[k]}`).join(' ') || 'an unlabelled machine';
}
