// SSD or HDD, the zos way: time random reads that bypass the page cache
// (O_DIRECT) and call a disk an SSD when they average under 0.5 ms. The
// verdict is written into the pool (`.seektime`) the first time and read
// back on every later boot, so a disk never flips between SSD and HDD.
//
// O_DIRECT wants the memory address aligned too (to the device's DMA
// alignment, usually 512 bytes), and JavaScript cannot see a Buffer's
// address. So the reader finds an aligned spot by trying: it reads block 0
// into a larger buffer at offsets 0, 16, 32, ... and keeps the first offset
// the kernel accepts (a misaligned O_DIRECT read fails with EINVAL before
// any I/O). If none is accepted the device does not do direct I/O, and the
// measurement refuses with that reason instead of timing cached reads.
//
// Reads are synchronous on purpose: a thread-pool hop would add its own
// latency to every sample. 128 reads of an HDD block the agent for about a
// second, once per disk in its life.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../lib/durable-file.ts';

export const SEEKTIME_FILE = '.seektime';
/** zos's threshold: average random-read time below this is an SSD. */
export const SSD_THRESHOLD_MS = 0.5;
export const READS = 128;

export type DiskType = 'ssd' | 'hdd';
export type TypeSource = 'measurement' | 'rotational flag' | 'zos-debug-vm rule' | 'persisted';

export class SeekTimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SeekTimeError';
  }
}

export interface SeekTime {
  avgMs: number;
  reads: number;
  /** Offset into the read buffer where direct reads were accepted (for the record). */
  bufferOffset: number;
}

/** Where in `buf` a direct read of `block` bytes at device offset 0 is accepted; throws when nowhere. */
function alignedOffset(fd: number, buf: Buffer, block: number, path: string): number {
  let last: NodeJS.ErrnoException | undefined;
  for (let off = 0; off + block <= buf.length && off <= 4096; off += 16) {
    try {
      readSync(fd, buf, off, block, 0);
      return off;
    } catch (e) {
      last = e as NodeJS.ErrnoException;
      if (last.code !== 'EINVAL') throw new SeekTimeError(`direct read of ${path} failed: ${last.code ?? last.message}`);
    }
  }
  throw new SeekTimeError(`${path} refuses direct (O_DIRECT) reads at every buffer alignment (${last?.code ?? 'EINVAL'}): it or its filesystem does not support direct I/O, so its latency cannot be measured`);
}

/**
 * Times `reads` random reads of `blockSize` bytes (the device's logical block
 * size) over the whole device; `random` is injectable for tests.
 */
export function measureSeekTime(path: string, sizeBytes: number, opts: { reads?: number; blockSize?: number; random?: () => number } = {}): SeekTime {
  const reads = opts.reads ?? READS;
  const block = opts.blockSize ?? 512;
  const random = opts.random ?? Math.random;
  if (sizeBytes < 2 * 4096) throw new SeekTimeError(`${path} is too small to measure (${sizeBytes} bytes)`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SeekTimeError(`cannot open ${path} for direct reads (${code}): ${code === 'EINVAL' ? 'its filesystem does not support O_DIRECT' : 'check the device'}`);
  }
  try {
    const buf = Buffer.allocUnsafeSlow(4096 + 4096 + block);
    const at = alignedOffset(fd, buf, block, path);
    // Offsets aligned to 4 KiB suit every logical block size up to 4 KiB.
    const slots = Math.floor((sizeBytes - 4096) / 4096);
    let total = 0n;
    for (let i = 0; i < reads; i++) {
      const position = Math.floor(random() * slots) * 4096;
      const start = process.hrtime.bigint();
      readSync(fd, buf, at, block, position);
      total += process.hrtime.bigint() - start;
    }
    return { avgMs: Number(total) / 1e6 / reads, reads, bufferOffset: at };
  } finally {
    closeSync(fd);
  }
}

export interface TypeFacts {
  /** /dev name (vda, sdb, ...). */
  name: string;
  bus: string;
  rotational: boolean;
  virtualized: boolean;
  debugVm: boolean;
  /** Average read time in ms, when measured. */
  measuredMs?: number;
}

// Buses whose emulation in QEMU can state a rotation rate (scsi-hd/ide-hd rotation_rate, NVMe is always
// non-rotating); virtio-blk cannot, and its disks always say rotational.
const STATES_ROTATION = new Set(['scsi', 'sata', 'sas', 'nvme']);

/**
 * The type of a pool that has none yet. On hardware the measurement wins
 * (controllers and RAID cards misreport the flag; zos trusts only the
 * measurement). In a VM the measurement times the host's page cache, so an
 * emulated HDD reads as an SSD: there the flag wins where the emulated bus
 * can state a rotation rate, and the measurement only for virtio-blk. With
 * zos-debug-vm, the reference rig's rule: virtio disks vdd and vde are HDD,
 * other virtio disks SSD.
 */
export function decideType(f: TypeFacts): { type: DiskType; by: TypeSource } {
  const byFlag = { type: f.rotational ? 'hdd' : 'ssd', by: 'rotational flag' } as const;
  if (f.debugVm && f.bus === 'virtio') return { type: f.name === 'vdd' || f.name === 'vde' ? 'hdd' : 'ssd', by: 'zos-debug-vm rule' };
  if ((f.virtualized || f.debugVm) && STATES_ROTATION.has(f.bus)) return byFlag;
  if (f.measuredMs !== undefined) return { type: f.measuredMs < SSD_THRESHOLD_MS ? 'ssd' : 'hdd', by: 'measurement' };
  return byFlag;
}

export interface SeekRecord {
  type: DiskType;
  by: Exclude<TypeSource, 'persisted'>;
  avgMs?: number;
  measured: string;
}

export async function readSeekRecord(mountPoint: string): Promise<SeekRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(join(mountPoint, SEEKTIME_FILE), 'utf8')) as SeekRecord;
    return r.type === 'ssd' || r.type === 'hdd' ? r : undefined;
  } catch {
    return undefined;
  }
}

export async function writeSeekRecord(mountPoint: string, rec: SeekRecord): Promise<void> {
  await writeFileDurably(join(mountPoint, SEEKTIME_FILE), JSON.stringify(rec) + '\n');
}

export interface PoolType {
  type: DiskType;
  by: TypeSource;
  avgMs?: number;
  /** Why no measurement was taken, when it failed. */
  measureError?: string;
}

/** The pool's type: persisted if it has one, else decided now (measuring the device) and persisted. */
export async function poolType(mountPoint: string, devicePath: string, sizeBytes: number, facts: Omit<TypeFacts, 'measuredMs'>, blockSize = 512): Promise<PoolType> {
  const saved = await readSeekRecord(mountPoint);
  if (saved) return { type: saved.type, by: 'persisted', ...(saved.avgMs !== undefined ? { avgMs: saved.avgMs } : {}) };
  let avgMs: number | undefined;
  let measureError: string | undefined;
  try {
    avgMs = measureSeekTime(devicePath, sizeBytes, { blockSize }).avgMs;
  } catch (e) {
    if (!(e instanceof SeekTimeError)) throw e;
    measureError = e.message;
  }
  const d = decideType({ ...facts, ...(avgMs !== undefined ? { measuredMs: avgMs } : {}) });
  await writeSeekRecord(mountPoint, { type: d.type, by: d.by as SeekRecord['by'], ...(avgMs !== undefined ? { avgMs } : {}), measured: new Date().toISOString() });
  return { ...d, ...(avgMs !== undefined ? { avgMs } : {}), ...(measureError ? { measureError } : {}) };
}
