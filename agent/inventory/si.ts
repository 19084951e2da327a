// The systeminformation side of the inventory: the few fields the agent
// compares, and the cross-check against sysfs/procfs. sysfs is the truth
// for what exists (systeminformation's diskLayout drops virtio disks that
// have no model, and knows no driver); systeminformation fills what sysfs
// lacks (a disk's model from SMART, interface addresses) and every
// disagreement becomes a note in the report.
import type { DiskInfo, Inventory, NicInfo } from './types.ts';

/** The parts of systeminformation's answers the agent reads (a recorded si.json has the same shape). */
export interface SiSnapshot {
  cpu: { manufacturer?: string; brand?: string; cores?: number };
  mem: { total?: number };
  system: { manufacturer?: string; model?: string; serial?: string; uuid?: string; virtual?: boolean };
  blockDevices: { name: string; type?: string; size?: number; model?: string; serial?: string; removable?: boolean; protocol?: string }[];
  diskLayout: { device?: string; name?: string; vendor?: string; size?: number; serialNum?: string; interfaceType?: string }[];
  networkInterfaces: { iface: string; mac?: string; ip4?: string; ip6?: string; internal?: boolean; speed?: number | null }[];
}

/**
 * Asks systeminformation, imported on demand (the unit tests do not need it)
 * and only the five of its modules the agent reads: its index loads all 23,
 * ~1 MB more RSS kept for the agent's life and more to compile at boot.
 */
export async function siSnapshot(): Promise<SiSnapshot> {
  const [{ cpu }, { mem }, { system }, { blockDevices, diskLayout }, { networkInterfaces }] = await Promise.all([
    import('systeminformation/lib/cpu.js'),
    import('systeminformation/lib/memory.js'),
    import('systeminformation/lib/system.js'),
    import('systeminformation/lib/filesystem.js'),
    import('systeminformation/lib/network.js'),
  ]);
  const [c, m, s, blocks, layout, nets] = await Promise.all([cpu(), mem(), system(), blockDevices(), diskLayout(), networkInterfaces()]);
  return { cpu: c, mem: m, system: s, blockDevices: blocks, diskLayout: layout, networkInterfaces: Array.isArray(nets) ? nets : [nets] };
}

const usable = (v: string | undefined): string | undefined => (v && v.trim() !== '' && v.trim() !== '-' ? v.trim() : undefined);

function checkDisks(disks: DiskInfo[], si: SiSnapshot, notes: string[]): void {
  const layout = new Map(si.diskLayout.filter((d) => d.device).map((d) => [d.device!.replace(/^\/dev\//, ''), d]));
  for (const disk of disks) {
    if (disk.kind !== 'disk' || disk.sizeBytes === 0) continue;
    const l = layout.get(disk.name);
    if (!l) {
      notes.push(`systeminformation's disk list misses ${disk.name} (${disk.bus}${disk.model ? '' : ', no model'}); kept from sysfs`);
      continue;
    }
    if (l.size !== undefined && l.size !== disk.sizeBytes) notes.push(`${disk.name}: size ${disk.sizeBytes} in sysfs, ${l.size} in systeminformation; sysfs kept`);
    disk.model ??= usable(l.name);
    disk.vendor ??= usable(l.vendor);
    disk.serial ??= usable(l.serialNum);
    layout.delete(disk.name);
  }
  for (const name of layout.keys()) notes.push(`systeminformation lists disk ${name}, which sysfs does not show; not used`);
}

function checkNics(nics: NicInfo[], si: SiSnapshot, notes: string[]): void {
  const byName = new Map(si.networkInterfaces.map((n) => [n.iface, n]));
  for (const nic of nics) {
    const s = byName.get(nic.name);
    if (!s) continue;
    if (s.mac && s.mac.toLowerCase() !== nic.mac) notes.push(`${nic.name}: MAC ${nic.mac} in sysfs, ${s.mac} in systeminformation; sysfs kept`);
    if (nic.addresses.length === 0) nic.addresses = [s.ip4, s.ip6].filter((a): a is string => !!a);
  }
}

/** Fills `inv` from `si` where sysfs/procfs had nothing, and notes every disagreement. */
export function crossCheck(inv: Inventory, si: SiSnapshot): void {
  if (si.cpu.cores !== undefined && si.cpu.cores !== inv.cpu.logical) inv.notes.push(`logical CPUs: ${inv.cpu.logical} in /proc/cpuinfo, ${si.cpu.cores} in systeminformation; /proc kept`);
  if (si.mem.total !== undefined && Math.abs(si.mem.total - inv.memoryBytes) > inv.memoryBytes / 100) {
    inv.notes.push(`memory: ${inv.memoryBytes} bytes in /proc/meminfo, ${si.mem.total} in systeminformation; /proc kept`);
  }
  if (si.system.virtual && !inv.virtualized) {
    inv.virtualized = true;
    inv.virtualizedBy.push('systeminformation');
  }
  checkDisks(inv.disks, si, inv.notes);
  checkNics(inv.nics, si, inv.notes);
}
