// What the agent knows about its machine: one plain, JSON-ready shape that
// sysfs/procfs readers fill and systeminformation cross-checks.

export interface CpuInfo {
  model: string;
  vendor: string;
  /** Logical CPUs (threads): zos's CRU. */
  logical: number;
  /** The CPU's `hypervisor` flag: the kernel runs under a hypervisor. */
  hypervisorFlag: boolean;
}

export interface DmiInfo {
  vendor?: string;
  product?: string;
  serial?: string;
  uuid?: string;
}

export type LinkState = 'up' | 'down' | 'unknown';

export interface NicInfo {
  name: string;
  mac: string;
  /** Kernel driver bound to the device (virtio_net, e1000, ...); absent for virtual interfaces. */
  driver?: string;
  /** Backed by a device (PCI, virtio, USB), not lo/bridge/veth/ifb. */
  physical: boolean;
  link: LinkState;
  /** Mbit/s as the driver reports it; absent when unknown (virtio reports -1). */
  speedMbps?: number;
  mtu?: number;
  addresses: string[];
}

export const DISK_BUSES = ['sata', 'scsi', 'sas', 'virtio', 'nvme', 'usb', 'mmc', 'virtual', 'unknown'] as const;
export type DiskBus = (typeof DISK_BUSES)[number];
export type DiskKind = 'disk' | 'cdrom' | 'loop' | 'ram' | 'zram' | 'floppy' | 'md' | 'dm';

export interface DiskInfo {
  name: string;
  /** /dev/<name> */
  path: string;
  sizeBytes: number;
  model?: string;
  vendor?: string;
  serial?: string;
  bus: DiskBus;
  kind: DiskKind;
  /** The kernel's queue/rotational flag: what the controller claims, not a measurement. */
  rotational: boolean;
  removable: boolean;
  readOnly: boolean;
  /** Partition names the kernel found on the disk. */
  partitions: string[];
}

export type SecureBootState = 'enabled' | 'disabled' | 'no-efi' | 'unknown';

export interface Inventory {
  cpu: CpuInfo;
  /** MemTotal: what the kernel can hand out (zos's MRU), below the RAM by what the kernel keeps (~6% of 1 GiB). */
  memoryBytes: number;
  /** The RAM the machine has: online memory blocks in sysfs times their size; absent without memory-block sysfs. */
  memoryInstalledBytes?: number;
  dmi: DmiInfo;
  nics: NicInfo[];
  disks: DiskInfo[];
  virtualized: boolean;
  /** Why the node counts as virtualized (empty when it does not). */
  virtualizedBy: string[];
  secureBoot: SecureBootState;
  /** Disagreements between the sources (systeminformation vs sysfs/procfs), for the report. */
  notes: string[];
}
