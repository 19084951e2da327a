// Which disks the agent may touch, decided from facts only (pure): the
// inventory's view of the disk, whether something holds it, and what the
// signature reader found. Anything in doubt is left alone: a disk is
// written only when it is a whole, fixed, writable disk whose probed
// regions are all zeroes.
import type { DiskInfo } from '../inventory/types.ts';
import type { Finding } from './signatures.ts';

/** zos labels its pools with a fresh uuid4; a label of another form is not ours. */
export const UUID_LABEL = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Smallest disk worth a pool (mkfs.btrfs itself needs about 114 MiB). */
export const MIN_DISK_BYTES = 1024 ** 3;

export type ScanState = 'skipped' | 'foreign' | 'blank' | 'candidate';

export interface Classification {
  state: ScanState;
  /** Why, in a few words (`usb disk`, `gpt partition table`, ...). */
  reason: string;
  /** The btrfs label of a candidate. */
  label?: string;
}

export interface ClassifyInput {
  disk: DiskInfo;
  /** What holds the disk or its partitions (mount points, holders such as dm-0); empty when free. */
  users: string[];
  /** Signature findings; undefined when the disk could not be read. */
  findings: Finding[] | undefined;
  readError?: string;
}

export interface ClassifyOptions {
  /** Treat loop devices as disks: for tests on the host only, never on a node. */
  allowLoop?: boolean;
  /** Smallest disk made into a pool (default MIN_DISK_BYTES; tests use small images). */
  minDiskBytes?: number;
}

function skipReason(disk: DiskInfo, opts: ClassifyOptions): string | undefined {
  if (disk.kind === 'loop' && !opts.allowLoop) return 'loop device';
  if (disk.kind !== 'disk' && disk.kind !== 'loop') return `${disk.kind} device`;
  if (disk.bus === 'usb') return 'usb disk';
  if (disk.removable) return 'removable media';
  if (disk.readOnly) return 'read-only';
  const min = opts.minDiskBytes ?? MIN_DISK_BYTES;
  if (disk.sizeBytes < min) return `too small (${disk.sizeBytes} bytes, a pool needs ${min})`;
  return undefined;
}

export function classifyDisk(input: ClassifyInput, opts: ClassifyOptions = {}): Classification {
  const { disk } = input;
  const skip = skipReason(disk, opts);
  if (skip) return { state: 'skipped', reason: skip };
  if (disk.partitions.length > 0) return { state: 'foreign', reason: `partitions ${disk.partitions.join(', ')}` };
  if (input.users.length > 0) return { state: 'foreign', reason: `in use (${input.users.join(', ')})` };
  if (!input.findings) return { state: 'foreign', reason: `unreadable (${input.readError ?? 'read failed'})` };
  const f = input.findings;
  if (f.length === 0) return { state: 'blank', reason: 'all zeroes in the first and last MiB' };
  if (f.length === 1 && f[0].name === 'btrfs' && f[0].label && UUID_LABEL.test(f[0].label)) {
    return { state: 'candidate', reason: 'btrfs with a uuid label (ours only with the zeroboot marker)', label: f[0].label };
  }
  const reason = f.map((x) => x.reason).join(', ');
  return { state: 'foreign', reason: f[0].name === 'btrfs' && f[0].label ? `${reason} (label ${JSON.stringify(f[0].label)})` : reason };
}
