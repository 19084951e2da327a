// The lease journal's sync thread: a sync resolves once the descriptor's
// data is on disk, a failed one rejects with the system's reason, and a
// thread that is gone leaves the syncs to the caller's thread.
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalSyncThread } from '../../boot/dhcp/journal-sync.ts';
import { LeaseFile } from '../../boot/dhcp/lease-file.ts';
import type { LeaseRecord } from '../../boot/dhcp/leases.ts';

function tempFile(t: { teardown(f: () => void): void }): { fd: number; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'zb-journal-sync-'));
  const path = join(dir, 'journal');
  const fd = openSync(path, 'a');
  t.teardown(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return { fd, path };
}

test('syncs on its thread, many in a row, and rejects a bad descriptor with its reason', async (t) => {
  const thread = await JournalSyncThread.start();
  t.teardown(() => thread.close());
  const { fd, path } = tempFile(t);
  for (let i = 0; i < 20; i++) {
    writeSync(fd, `line ${i}\n`);
    await thread.sync(fd);
  }
  t.is(readFileSync(path, 'utf8').split('\n').length, 21);
  await t.throwsAsync(() => thread.sync(999_999), { message: /EBADF/ });
  await Promise.all([thread.sync(fd), thread.sync(fd), thread.sync(fd)]);
});

test('once the thread is closed, syncs run on the calling thread', async (t) => {
  const thread = await JournalSyncThread.start();
  const { fd } = tempFile(t);
  await thread.close();
  await t.notThrowsAsync(() => thread.sync(fd));
  await t.throwsAsync(() => thread.sync(999_999), { message: /EBADF/ });
});

// What counts as slow is the test's to say: a loaded machine's disk may take more than SLOW_SYNC_MS for any sync.
test('a lease file with a sync thread syncs the first group there, then on the calling thread while the disk is fast', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'zb-lease-sync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = await LeaseFile.open(join(dir, 'leases.json'), () => [], { syncThread: true, slowSyncMs: 60_000 });
  t.is(file.syncsOn, 'thread', 'the disk speed is not known yet');
  await file.append(record(10));
  t.is(file.syncsOn, 'caller', 'a fast sync brings the next ones back');
  await file.append(record(11));
  t.is(file.syncsOn, 'caller');
  t.is((await LeaseFile.load(join(dir, 'leases.json'))).records.length, 2, 'both records are in the journal');
  await file.close();
  const pooled = await LeaseFile.open(join(dir, 'other.json'), () => []);
  t.is(pooled.syncsOn, 'pool');
  await pooled.close();
});

test('a slow sync keeps the next ones on the thread', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'zb-lease-sync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = await LeaseFile.open(join(dir, 'leases.json'), () => [], { syncThread: true, slowSyncMs: -1 });
  for (const i of [10, 11, 12]) {
    await file.append(record(i));
    t.is(file.syncsOn, 'thread');
  }
  t.is((await LeaseFile.load(join(dir, 'leases.json'))).records.length, 3);
  await file.close();
});

function record(i: number): LeaseRecord {
  return { mac: `52:54:00:00:00:${i}`, ip: `10.0.0.${i}`, state: 'bound', expires: Date.now() + 60_000 };
}
