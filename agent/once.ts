// One read-only look at the node: its settings, inventory (cross-checked
// with systeminformation) and what each disk is, without preparing,
// mounting or measuring anything. What `zeroboot agent --once` prints.
import { join } from 'node:path';
import { agentCmdline, readAgentCmdline, type AgentCmdline } from './cmdline.ts';
import { capacity, type Capacity } from './inventory/capacity.ts';
import { collectInventory, liveAddresses } from './inventory/index.ts';
import { siSnapshot } from './inventory/si.ts';
import type { Inventory } from './inventory/types.ts';
import { scanDisks, type DiskReport } from './disks/prepare.ts';

export interface OnceView {
  cmdline: AgentCmdline;
  inventory: Inventory;
  /** CRU and MRU; SRU and HRU count pools, and a read-only look prepares none. */
  capacity: Capacity;
  disks: DiskReport[];
}

export interface OnceOptions {
  /** A recorded tree to read instead of / (no systeminformation then: it reads the live machine). */
  root?: string;
  mountRoot?: string;
  allowLoop?: boolean;
}

export async function lookOnce(opts: OnceOptions = {}): Promise<OnceView> {
  const root = opts.root;
  const cmdline = root ? agentCmdline('') : await readAgentCmdline();
  const inventory = root
    ? collectInventory({ root, debugVm: cmdline.debugVm })
    : collectInventory({ si: await siSnapshot(), addresses: liveAddresses(), debugVm: cmdline.debugVm });
  // Under a recorded tree, devices are looked for in it too (never the live machine's /dev).
  if (root) for (const d of inventory.disks) d.path = join(root, 'dev', d.name);
  const disks = await scanDisks(inventory.disks, { mountRoot: opts.mountRoot ?? '/mnt', root: root ?? '/', allowLoop: opts.allowLoop ?? false });
  return { cmdline, inventory, capacity: capacity(inventory.cpu.logical, inventory.memoryBytes, []), disks };
}

const GiB = 1024 ** 3;
const size = (b: number) => `${(b / GiB).toFixed(b < 10 * GiB ? 1 : 0)} GiB`;

/** A few lines for a terminal. */
export function onceLines(v: OnceView): string[] {
  const i = v.inventory;
  const lines = [
    `cpu      ${i.cpu.logical} x ${i.cpu.model}`,
    `memory   ${size(i.memoryBytes)}`,
    `machine  ${[i.dmi.vendor, i.dmi.product, i.dmi.serial].filter(Boolean).join(' / ') || '(no DMI)'}${i.virtualized ? `  virtualized (${i.virtualizedBy.join(', ')})` : ''}`,
    `boot     secure boot ${i.secureBoot}, runmode ${v.cmdline.runmode}${v.cmdline.bootMac ? `, boot NIC ${v.cmdline.bootMac}` : ''}`,
  ];
  for (const n of i.nics.filter((x) => x.physical)) lines.push(`nic      ${n.name} ${n.mac} ${n.driver ?? '?'} link ${n.link}${n.speedMbps ? ` ${n.speedMbps} Mb/s` : ''} ${n.addresses.join(' ')}`.trimEnd());
  for (const d of v.disks) lines.push(`disk     ${d.name.padEnd(8)} ${size(d.sizeBytes).padStart(9)} ${d.bus.padEnd(7)} ${d.state}: ${d.reason}`);
  for (const note of i.notes) lines.push(`note     ${note}`);
  return lines;
}
