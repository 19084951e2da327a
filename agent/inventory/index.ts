// The node's inventory: procfs and sysfs read under a root (/ on the node, a
// recorded tree in tests), cross-checked with systeminformation when given.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parseCpuinfo, parseMeminfo } from './procfs.ts';
import { crossCheck, siSnapshot, type SiSnapshot } from './si.ts';
import { readBlockDevices, readDmi, readInstalledMemory, readNics, readSecureBoot } from './sysfs.ts';
import type { DmiInfo, Inventory } from './types.ts';

export type { Inventory } from './types.ts';

// Vendors and products the hypervisors write into DMI (QEMU's default, unless -smbios says otherwise).
const VM_DMI = /^(qemu|bochs|vmware.*|innotek gmbh|xen|parallels.*|amazon ec2)$|virtual machine|\bkvm\b|hvm domu/i;

export interface InventoryOptions {
  /** Filesystem root to read proc/ and sys/ under (default /). */
  root?: string;
  /** systeminformation's view to cross-check with; none skips the cross-check. */
  si?: SiSnapshot;
  /** Interface addresses by name (default: none; the live collector passes os.networkInterfaces()). */
  addresses?: Record<string, string[]>;
  /** `zos-debug-vm`: count the node as virtualized whatever it looks like. */
  debugVm?: boolean;
}

function virtualizedBy(hypervisorFlag: boolean, dmi: DmiInfo, debugVm: boolean): string[] {
  const why: string[] = [];
  if (hypervisorFlag) why.push('cpu hypervisor flag');
  if ((dmi.vendor && VM_DMI.test(dmi.vendor)) || (dmi.product && VM_DMI.test(dmi.product))) why.push(`dmi ${dmi.vendor ?? ''} ${dmi.product ?? ''}`.trim());
  if (debugVm) why.push('zos-debug-vm');
  return why;
}

export function collectInventory(opts: InventoryOptions = {}): Inventory {
  const root = opts.root ?? '/';
  const cpu = parseCpuinfo(readFileSync(join(root, 'proc/cpuinfo'), 'utf8'));
  const dmi = readDmi(root);
  const why = virtualizedBy(cpu.hypervisorFlag, dmi, opts.debugVm ?? false);
  const installed = readInstalledMemory(root);
  const inv: Inventory = {
    cpu,
    memoryBytes: parseMeminfo(readFileSync(join(root, 'proc/meminfo'), 'utf8')),
    ...(installed !== undefined ? { memoryInstalledBytes: installed } : {}),
    dmi,
    nics: readNics(root, opts.addresses),
    disks: readBlockDevices(root),
    virtualized: why.length > 0,
    virtualizedBy: why,
    secureBoot: readSecureBoot(root),
    notes: [],
  };
  if (opts.si) crossCheck(inv, opts.si);
  return inv;
}

/** Addresses of each interface as Node sees them (not in sysfs). */
export function liveAddresses(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, addrs] of Object.entries(networkInterfaces())) out[name] = (addrs ?? []).map((a) => a.address);
  return out;
}

/** The running machine's inventory, cross-checked with systeminformation. */
export async function liveInventory(debugVm = false): Promise<Inventory> {
  return collectInventory({ si: await siSnapshot(), addresses: liveAddresses(), debugVm });
}
