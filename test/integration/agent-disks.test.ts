// Disk safety on real block devices: loop devices over sparse files in a
// temporary directory, read through the real sysfs. A foreign disk is never
// written (sha256 of its backing file before and after), a blank one is
// made a pool, and a second run recognises the pool with its data intact.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { readBlockDevices } from '../../agent/inventory/sysfs.ts';
import { MARKER_FILE, scanDisks, setupDisks, ZDB_SUBVOLUME, type DiskReport } from '../../agent/disks/prepare.ts';
import { parseMountinfo } from '../../agent/disks/users.ts';
import { UUID_LABEL } from '../../agent/disks/classify.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'agent-disks-'));
const mountRoot = join(dir, 'mnt');
const loops: string[] = [];
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function loopDisk(name: string, mib: number, make?: (path: string) => void): { file: string; dev: string } {
  const file = join(dir, `${name}.img`);
  writeFileSync(file, '');
  truncateSync(file, mib * MiB);
  make?.(file);
  const dev = sh('losetup', ['-f', '--show', file]);
  loops.push(dev);
  return { file, dev };
}

function unmountAll(): void {
  const ours = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of ours.reverse()) sh('umount', [m.mountPoint]);
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

test.after.always(() => {
  try {
    unmountAll();
  } finally {
    for (const dev of loops) execFileSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
});

const disksOf = (devs: string[]) => readBlockDevices('/').filter((d) => devs.includes(d.path));
const byDev = (rs: DiskReport[]) => Object.fromEntries(rs.map((r) => [r.path, r]));
const opts = { mountRoot, allowLoop: true, minDiskBytes: 128 * MiB };

test.serial('foreign disks are never written, a blank one becomes a pool, and a second run reuses it with its data', async (t) => {
  const ext4 = loopDisk('ext4', 160, (f) => sh('mkfs.ext4', ['-q', '-F', '-L', 'photos', f]));
  const gpt = loopDisk('gpt', 160, (f) => execFileSync('sfdisk', ['-q', f], { input: 'label: gpt\n,64M\n' }));
  // A btrfs labelled like a pool, but not made by us (another zos, an admin): not ours.
  const other = loopDisk('other-btrfs', 160, (f) => sh('mkfs.btrfs', ['-q', '-L', '0b3e2e1c-5a8f-4c1e-9d2a-7f6e5d4c3b2a', f]));
  const blank = loopDisk('blank', 160);
  const devs = [ext4.dev, gpt.dev, other.dev, blank.dev];
  const foreignFiles = [ext4.file, gpt.file, other.file];
  const before = await Promise.all(foreignFiles.map(sha256));

  // Without the test option, loop devices are skipped, whatever they hold.
  t.true((await scanDisks(disksOf(devs), { mountRoot })).every((r) => r.state === 'skipped' && r.reason === 'loop device'));

  const first = byDev(await setupDisks(disksOf(devs), opts));
  t.like(first[ext4.dev], { state: 'foreign', reason: 'ext4 signature' });
  // The kernel may or may not have scanned the loop's partitions: either reason names the table.
  t.regex(first[gpt.dev].reason, /gpt partition table|partitions loop\d+p1/);
  t.is(first[gpt.dev].state, 'foreign');
  t.like(first[other.dev], { state: 'foreign', reason: 'btrfs signature (label 0b3e2e1c-5a8f-4c1e-9d2a-7f6e5d4c3b2a) without the zeroboot marker' });
  const pool = first[blank.dev];
  t.is(pool.state, 'prepared', pool.reason);
  t.regex(pool.label!, UUID_LABEL);
  t.is(pool.mountPoint, join(mountRoot, pool.label!));
  t.is(statSync(join(pool.mountPoint!, ZDB_SUBVOLUME)).ino, 256);
  t.is(JSON.parse(readFileSync(join(pool.mountPoint!, MARKER_FILE), 'utf8')).label, pool.label);
  t.is(sh('blkid', ['-p', '-s', 'LABEL', '-o', 'value', blank.dev]), pool.label!);
  writeFileSync(join(pool.mountPoint!, ZDB_SUBVOLUME, 'kept'), 'data written before the reboot');

  // The agent restarting while the pool is mounted: reused in place.
  t.like(byDev(await setupDisks(disksOf(devs), opts))[blank.dev], { state: 'reused', label: pool.label });

  // A reboot: everything unmounted, the same disks.
  unmountAll();
  t.false(existsSync(join(pool.mountPoint!, ZDB_SUBVOLUME, 'kept')));
  const second = byDev(await setupDisks(disksOf(devs), opts));
  t.like(second[blank.dev], { state: 'reused', label: pool.label, mountPoint: pool.mountPoint });
  t.is(readFileSync(join(pool.mountPoint!, ZDB_SUBVOLUME, 'kept'), 'utf8'), 'data written before the reboot');
  t.like(second[other.dev], { state: 'foreign' });
  unmountAll();
  t.deepEqual(await Promise.all(foreignFiles.map(sha256)), before, 'a foreign disk changed');
  t.log(foreignFiles.map((f) => basename(f)).join(', '), 'unchanged');
});

test.serial('a disk someone mounted is in use, and a disk too small is skipped', async (t) => {
  const small = loopDisk('small', 64);
  const used = loopDisk('used', 160, (f) => sh('mkfs.ext4', ['-q', '-F', f]));
  const mnt = join(dir, 'elsewhere');
  sh('mkdir', ['-p', mnt]);
  sh('mount', [used.dev, mnt]);
  try {
    const r = byDev(await setupDisks(disksOf([small.dev, used.dev]), opts));
    t.like(r[small.dev], { state: 'skipped' });
    t.regex(r[small.dev].reason, /too small/);
    t.like(r[used.dev], { state: 'foreign', reason: `in use (mounted at ${mnt})` });
  } finally {
    sh('umount', [mnt]);
  }
});
