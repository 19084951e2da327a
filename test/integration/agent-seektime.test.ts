// Seek-time measurement on a real block device (a loop device): the reads
// really bypass the page cache, and a pool's type is persisted and never
// measured again.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { measureSeekTime, poolType, READS, readSeekRecord, SEEKTIME_FILE, SSD_THRESHOLD_MS } from '../../agent/disks/seektime.ts';

const dir = mkdtempSync(join(tmpdir(), 'agent-seek-'));
const file = join(dir, 'disk.img');
writeFileSync(file, '');
truncateSync(file, 256 * 1024 * 1024);
const dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
const pool = join(dir, 'pool');
execFileSync('mkdir', ['-p', pool]);
test.after.always(() => {
  execFileSync('losetup', ['-d', dev]);
  rmSync(dir, { recursive: true, force: true });
});

/** Reads completed by the device (first field of /sys/block/<dev>/stat). */
const readsDone = () => Number(readFileSync(`/sys/block/${basename(dev)}/stat`, 'utf8').trim().split(/\s+/)[0]);

test.serial('every timed read reaches the device although the same blocks sit in the page cache', (t) => {
  const seq = () => {
    let i = 0;
    return () => ((i++ * 7919) % 1000) / 1000;
  };
  // The kernel drops a block device's cache at its last close: hold it open, and fill the
  // cache with the very blocks the measurement will read.
  const held = openSync(dev, 'r');
  try {
    const random = seq();
    const slots = Math.floor((256 * 1024 * 1024 - 4096) / 4096);
    const buf = Buffer.alloc(4096);
    for (let i = 0; i < READS; i++) readSync(held, buf, 0, 4096, Math.floor(random() * slots) * 4096);
    const warm = readsDone();
    for (let i = 0, r = seq(); i < READS; i++) readSync(held, buf, 0, 4096, Math.floor(r() * slots) * 4096);
    t.is(readsDone(), warm, 'cached reads do not reach the device');
    const r = measureSeekTime(dev, 256 * 1024 * 1024, { random: seq() });
    t.is(r.reads, READS);
    t.true(r.avgMs > 0);
    // 128 timed reads plus the alignment probe's read(s) of block 0
    t.true(readsDone() - warm >= READS, `${readsDone() - warm} device reads`);
    t.log(`${r.avgMs.toFixed(3)} ms average, buffer offset ${r.bufferOffset}`);
  } finally {
    closeSync(held);
  }
});

test.serial('a pool is typed once: the record is written, then read back instead of measuring', async (t) => {
  const facts = { name: basename(dev), bus: 'virtual', rotational: false, virtualized: false, debugVm: false };
  const first = await poolType(pool, dev, 256 * 1024 * 1024, facts);
  t.is(first.by, 'measurement');
  // A loop device over a cached file is usually well under 0.5 ms, but this machine may be loaded.
  t.is(first.type, first.avgMs! < SSD_THRESHOLD_MS ? 'ssd' : 'hdd');
  t.like(await readSeekRecord(pool), { type: first.type, by: 'measurement', avgMs: first.avgMs });
  // Pretend an earlier boot measured an HDD: it stays one, and the device is not read.
  writeFileSync(join(pool, SEEKTIME_FILE), JSON.stringify({ type: 'hdd', by: 'measurement', avgMs: 8.1, measured: '2026-01-01T00:00:00.000Z' }));
  const before = readsDone();
  t.deepEqual(await poolType(pool, dev, 256 * 1024 * 1024, facts), { type: 'hdd', by: 'persisted', avgMs: 8.1 });
  t.is(readsDone(), before);
});
