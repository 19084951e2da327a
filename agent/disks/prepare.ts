// Scanning and preparing the node's disks. A scan only reads (sysfs, the
// first and last MiB, mountinfo). Setting up acts on two kinds of disk only:
// a blank one becomes a pool as zos makes it (mkfs.btrfs -L <uuid4>, no
// partition table, mounted at <mountRoot>/<label>, a `zdb` subvolume) plus
// our marker file; a btrfs with a uuid label is reused only when a
// read-only look (no log replay) finds our marker naming that label. Every
// other disk is never opened for writing.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../lib/durable-file.ts';
import { runCommand } from '../../lib/process.ts';
import type { DiskInfo } from '../inventory/types.ts';
import { classifyDisk, type Classification, type ClassifyOptions } from './classify.ts';
import { readProbeRegions } from './probe.ts';
import { isZero, probeSignatures } from './signatures.ts';
import { deviceUsers, parseMountinfo } from './users.ts';

/** The file in a pool's root that says zeroboot made it; its JSON names the pool's label. */
export const MARKER_FILE = '.zeroboot-pool';
export const ZDB_SUBVOLUME = 'zdb';

export type DiskState = 'skipped' | 'foreign' | 'blank' | 'candidate' | 'preparing' | 'prepared' | 'reused' | 'failed';

export interface DiskReport {
  name: string;
  path: string;
  sizeBytes: number;
  bus: DiskInfo['bus'];
  state: DiskState;
  reason: string;
  label?: string;
  mountPoint?: string;
}

export interface DiskSetupOptions extends ClassifyOptions {
  /** Where pools are mounted (zos: /mnt). */
  mountRoot: string;
  /** Root of proc/ and sys/ (default /). */
  root?: string;
  /**
   * Leave blank disks alone for now: they are reported `preparing` and
   * prepareDisks() formats them later (the agent does it after its first
   * report, so mkfs is not on that report's path). Our pools are still reused.
   */
  deferBlank?: boolean;
}

/** The reason a blank disk left for later carries. */
export const PREPARING_REASON = 'blank: btrfs is being made (after the first report)';

interface Marker {
  format: 1;
  label: string;
  prepared: string;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await runCommand(cmd, args, { timeout: 120_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 200) || `exit ${r.code}`}`);
}

/** Read-only: what each disk is. */
export async function scanDisk(disk: DiskInfo, opts: DiskSetupOptions): Promise<Classification> {
  const root = opts.root ?? '/';
  let users = deviceUsers(root, disk.name, disk.partitions);
  let findings: ReturnType<typeof probeSignatures> | undefined;
  let readError: string | undefined;
  try {
    findings = probeSignatures(await readProbeRegions(disk.path, disk.sizeBytes));
  } catch (e) {
    readError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
  // Our own pool mounted where we mount it (the agent restarted) is no other user.
  const label = findings?.length === 1 && findings[0].name === 'btrfs' ? findings[0].label : undefined;
  if (label) users = users.filter((u) => u !== `mounted at ${join(opts.mountRoot, label)}`);
  return classifyDisk({ disk, users, findings, readError }, opts);
}

async function readMarker(dir: string): Promise<Marker | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, MARKER_FILE), 'utf8')) as Marker;
    return m && m.format === 1 && typeof m.label === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

async function writeMarker(dir: string, label: string): Promise<void> {
  await writeFileDurably(join(dir, MARKER_FILE), JSON.stringify({ format: 1, label, prepared: new Date().toISOString() } satisfies Marker) + '\n');
}

function mountedAt(root: string, path: string, mountPoint: string): boolean {
  return parseMountinfoSync(root).some((m) => m.source === path && m.mountPoint === mountPoint);
}

function parseMountinfoSync(root: string) {
  try {
    return parseMountinfo(readFileSync(join(root, 'proc/self/mountinfo'), 'utf8'));
  } catch {
    return [];
  }
}

async function ensureSubvolume(mountPoint: string): Promise<void> {
  const dir = join(mountPoint, ZDB_SUBVOLUME);
  // A btrfs subvolume's root directory is inode 256.
  const s = await stat(dir).catch(() => undefined);
  if (s?.ino === 256) return;
  if (s) throw new Error(`${dir} exists but is not a btrfs subvolume`);
  await run('btrfs', ['subvolume', 'create', dir]);
}

async function mountPool(disk: DiskInfo, label: string, opts: DiskSetupOptions): Promise<string> {
  const mountPoint = join(opts.mountRoot, label);
  if (!mountedAt(opts.root ?? '/', disk.path, mountPoint)) {
    await mkdir(mountPoint, { recursive: true });
    await run('mount', ['-t', 'btrfs', disk.path, mountPoint]);
  }
  return mountPoint;
}

/** Marker check of a candidate without writing: read-only mount, no log replay, in a private directory. */
async function markerOf(disk: DiskInfo, label: string, opts: DiskSetupOptions): Promise<Marker | undefined> {
  const mountPoint = join(opts.mountRoot, label);
  if (mountedAt(opts.root ?? '/', disk.path, mountPoint)) return readMarker(mountPoint);
  await mkdir(opts.mountRoot, { recursive: true });
  const tmp = await mkdtemp(join(opts.mountRoot, '.probe-'));
  try {
    await run('mount', ['-t', 'btrfs', '-o', 'ro,rescue=nologreplay', disk.path, tmp]);
    try {
      return await readMarker(tmp);
    } finally {
      await run('umount', [tmp]);
    }
  } finally {
    await rmdir(tmp);
  }
}

async function prepareBlank(disk: DiskInfo, opts: DiskSetupOptions): Promise<{ label: string; mountPoint: string }> {
  // Look again right before writing: the scan may be minutes old.
  if (!isZero(await readProbeRegions(disk.path, disk.sizeBytes))) throw new Error('no longer blank when about to format it; left alone');
  const label = randomUUID();
  // No -f: mkfs.btrfs itself refuses a device that holds a filesystem, a second guard.
  await run('mkfs.btrfs', ['-q', '-L', label, disk.path]);
  const mountPoint = await mountPool(disk, label, opts);
  await writeMarker(mountPoint, label);
  await ensureSubvolume(mountPoint);
  return { label, mountPoint };
}

function report(disk: DiskInfo, state: DiskState, reason: string, extra: Partial<DiskReport> = {}): DiskReport {
  return { name: disk.name, path: disk.path, sizeBytes: disk.sizeBytes, bus: disk.bus, state, reason, ...extra };
}

/** Read-only view of every disk (for `zeroboot agent --once`). */
export async function scanDisks(disks: DiskInfo[], opts: DiskSetupOptions): Promise<DiskReport[]> {
  const out: DiskReport[] = [];
  for (const disk of disks) {
    const c = await scanDisk(disk, opts);
    out.push(report(disk, c.state, c.reason, c.label ? { label: c.label } : {}));
  }
  return out;
}

/** Formats a blank disk (scanned blank, looked at again right before writing) into a pool. */
async function prepareOne(disk: DiskInfo, opts: DiskSetupOptions): Promise<DiskReport> {
  try {
    const { label, mountPoint } = await prepareBlank(disk, opts);
    return report(disk, 'prepared', 'was blank: btrfs made, mounted, zdb subvolume created', { label, mountPoint });
  } catch (e) {
    return report(disk, 'failed', (e as Error).message);
  }
}

/**
 * Formats the disks setupDisks() left `preparing` (deferBlank), all at once:
 * each mkfs is its own process, so two disks take about the time of one on a
 * 2-CPU node. The answer keeps the order of `disks`.
 */
export function prepareDisks(disks: DiskInfo[], opts: DiskSetupOptions): Promise<DiskReport[]> {
  return Promise.all(disks.map((d) => prepareOne(d, opts)));
}

/** Scans every disk and acts on blank and candidate ones; one disk failing does not stop the others. */
export async function setupDisks(disks: DiskInfo[], opts: DiskSetupOptions): Promise<DiskReport[]> {
  const out: DiskReport[] = [];
  for (const disk of disks) {
    const c = await scanDisk(disk, opts);
    try {
      if (c.state === 'blank' && opts.deferBlank) {
        out.push(report(disk, 'preparing', PREPARING_REASON));
      } else if (c.state === 'blank') {
        out.push(await prepareOne(disk, opts));
      } else if (c.state === 'candidate') {
        const marker = await markerOf(disk, c.label!, opts);
        if (marker?.label !== c.label) {
          out.push(report(disk, 'foreign', `btrfs signature (label ${c.label}) without the zeroboot marker`));
          continue;
        }
        const mountPoint = await mountPool(disk, c.label!, opts);
        await ensureSubvolume(mountPoint);
        out.push(report(disk, 'reused', 'zeroboot pool (marker matches the label)', { label: c.label, mountPoint }));
      } else {
        out.push(report(disk, c.state, c.reason));
      }
    } catch (e) {
      out.push(report(disk, 'failed', (e as Error).message));
    }
  }
  return out;
}
