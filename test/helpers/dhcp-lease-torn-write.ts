// Child process for the lease-file test: run inside `unshare -m` with a small
// tmpfs mounted at argv[2]. Fills the file system so one journal write lands
// only in part (the rest of the journal's page fits, the record does not),
// frees the space, appends again, then prints what a restart would load.
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LeaseFile } from '../../boot/dhcp/lease-file.ts';
import type { LeaseRecord } from '../../boot/dhcp/leases.ts';

const dir = process.argv[2]!;
const path = join(dir, 'leases.json');
const lease = (mac: string, hostname: string): LeaseRecord => ({ mac, ip: '10.0.0.10', state: 'bound', expires: 1e13, hostname });

const file = await LeaseFile.open(path, () => []);
await file.append(lease('52:54:00:00:00:01', 'first'));
// Fill every free block; the journal's first page still has room for a few bytes.
const filler = await open(join(dir, 'filler'), 'w');
const block = Buffer.alloc(4096, 1);
for (;;) {
  try {
    await filler.write(block);
  } catch {
    break;
  }
}
for (;;) {
  try {
    await filler.write(block.subarray(0, 1));
  } catch {
    break;
  }
}
await filler.close();
const failed = await file.append(lease('52:54:00:00:00:02', 'x'.repeat(6000))).then(
  () => 'stored',
  (e: Error) => `rejected: ${e.message}`,
);
await rm(join(dir, 'filler'));
const acked = await file.append(lease('52:54:00:00:00:03', 'after-the-disk-full')).then(
  () => 'stored',
  (e: Error) => `rejected: ${e.message}`,
);
// No close(): a crash now must not lose what was acknowledged.
const loaded = await LeaseFile.load(path);
process.stdout.write(JSON.stringify({ failed, acked, macs: loaded.records.map((r) => ('mac' in r ? r.mac : r.declined)) }) + '\n');
