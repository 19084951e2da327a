import test from 'ava';
import { classifyDisk, MIN_DISK_BYTES } from '../../agent/disks/classify.ts';
import { parseMountinfo } from '../../agent/disks/users.ts';
import type { DiskInfo } from '../../agent/inventory/types.ts';
import type { Finding } from '../../agent/disks/signatures.ts';

const disk = (o: Partial<DiskInfo> = {}): DiskInfo => ({ name: 'sdb', path: '/dev/sdb', sizeBytes: 32 * 1024 ** 3, bus: 'sata', kind: 'disk', rotational: true, removable: false, readOnly: false, partitions: [], ...o });
const btrfs = (label?: string): Finding => ({ kind: 'filesystem', name: 'btrfs', reason: 'btrfs signature', ...(label ? { label } : {}) });
const LABEL = '0b3e2e1c-5a8f-4c1e-9d2a-7f6e5d4c3b2a';
const c = (d: DiskInfo, findings: Finding[] | undefined = [], users: string[] = [], opts = {}) => classifyDisk({ disk: d, users, findings }, opts);

test('usb, cdrom, ram, zram, floppy, md, dm, loop, removable, read-only and tiny disks are skipped', (t) => {
  t.deepEqual(c(disk({ bus: 'usb' })), { state: 'skipped', reason: 'usb disk' });
  for (const kind of ['cdrom', 'ram', 'zram', 'floppy', 'md', 'dm'] as const) t.is(c(disk({ kind })).reason, `${kind} device`);
  t.is(c(disk({ kind: 'loop' })).reason, 'loop device');
  t.is(c(disk({ kind: 'loop' }), [], [], { allowLoop: true }).state, 'blank');
  t.is(c(disk({ removable: true })).reason, 'removable media');
  t.is(c(disk({ readOnly: true })).reason, 'read-only');
  t.regex(c(disk({ sizeBytes: MIN_DISK_BYTES - 512 })).reason, /too small/);
});

test('partitions, users, unreadable disks and any signature make a disk foreign, with the reason', (t) => {
  t.deepEqual(c(disk({ partitions: ['sdb1', 'sdb2'] })), { state: 'foreign', reason: 'partitions sdb1, sdb2' });
  t.deepEqual(c(disk(), [], ['mounted at /srv']), { state: 'foreign', reason: 'in use (mounted at /srv)' });
  t.deepEqual(classifyDisk({ disk: disk(), users: [], findings: undefined, readError: 'EIO' }), { state: 'foreign', reason: 'unreadable (EIO)' });
  t.deepEqual(c(disk(), [{ kind: 'partition table', name: 'gpt', reason: 'gpt partition table' }, { kind: 'filesystem', name: 'ext4', reason: 'ext4 signature' }]), { state: 'foreign', reason: 'gpt partition table, ext4 signature' });
  t.deepEqual(c(disk(), [btrfs('backup')]), { state: 'foreign', reason: 'btrfs signature (label "backup")' });
  t.is(c(disk(), [btrfs()]).state, 'foreign');
  // uuid-looking but not a version-4 uuid, as zos makes
  t.is(c(disk(), [btrfs('0b3e2e1c-5a8f-1c1e-9d2a-7f6e5d4c3b2a')]).state, 'foreign');
  t.is(c(disk(), [{ kind: 'partition table', name: 'gpt', reason: 'gpt partition table' }, btrfs(LABEL)]).state, 'foreign');
});

test('zeroes are blank; a lone btrfs with a uuid4 label is a candidate (the marker decides)', (t) => {
  t.deepEqual(c(disk()), { state: 'blank', reason: 'all zeroes in the first and last MiB' });
  t.like(c(disk(), [btrfs(LABEL)]), { state: 'candidate', label: LABEL });
});

test('mountinfo lines, with escaped blanks and optional fields', (t) => {
  const text = '36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n40 1 0:35 / /mnt/pool rw shared:5 - btrfs /dev/loop3 rw,space_cache=v2\n';
  t.deepEqual(parseMountinfo(text), [
    { devNumber: '98:0', mountPoint: '/mnt/my disk', fsType: 'ext3', source: '/dev/root' },
    { devNumber: '0:35', mountPoint: '/mnt/pool', fsType: 'btrfs', source: '/dev/loop3' },
  ]);
});
