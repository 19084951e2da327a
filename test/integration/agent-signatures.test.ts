// The signature reader against the real tools: each image is made by the
// Debian tool that makes such disks, and blkid -p (libblkid) must agree with
// what agent/disks/signatures.ts finds in the first and last MiB.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeSignatures } from '../../agent/disks/signatures.ts';
import { readProbeRegions } from '../../agent/disks/probe.ts';
import { blkidFinding, parseBlkidExport } from '../../agent/inventory/blkid.ts';

const dir = mkdtempSync(join(tmpdir(), 'agent-sig-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { input, stdio: ['pipe', 'ignore', 'pipe'] });

function image(name: string, mib: number): string {
  const path = join(dir, `${name}.img`);
  writeFileSync(path, '');
  truncateSync(path, mib * MiB);
  return path;
}

function blkid(path: string): Record<string, string> {
  const r = spawnSync('blkid', ['-p', '-o', 'export', path], { encoding: 'utf8' });
  return parseBlkidExport(r.stdout);
}

async function ours(path: string) {
  return probeSignatures(await readProbeRegions(path, statSync(path).size));
}

const MAKERS: Record<string, [number, (p: string) => void, string]> = {
  gpt: [16, (p) => run('sfdisk', ['-q', p], 'label: gpt\n,8M\n'), 'gpt partition table'],
  mbr: [16, (p) => run('sfdisk', ['-q', p], 'label: dos\n,8M,83\n'), 'mbr partition table'],
  ext2: [16, (p) => run('mkfs.ext2', ['-q', '-F', '-L', 'old', p]), 'ext2 signature'],
  ext3: [16, (p) => run('mkfs.ext3', ['-q', '-F', p]), 'ext3 signature'],
  ext4: [16, (p) => run('mkfs.ext4', ['-q', '-F', '-L', 'data', p]), 'ext4 signature'],
  xfs: [320, (p) => run('mkfs.xfs', ['-q', p]), 'xfs signature'],
  btrfs: [128, (p) => run('mkfs.btrfs', ['-q', '-L', 'theirs', p]), 'btrfs signature'],
  swap: [16, (p) => run('mkswap', [p]), 'swap signature'],
  vfat: [16, (p) => run('mkfs.vfat', [p]), 'vfat signature'],
  luks: [32, (p) => run('cryptsetup', ['luksFormat', '-q', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', p], 'secret'), 'luks encryption header'],
};

for (const [name, [mib, make, reason]] of Object.entries(MAKERS)) {
  test(`${name} made by its tool: our reader says "${reason}", as blkid -p does`, async (t) => {
    const path = image(name, mib);
    make(path);
    const found = await ours(path);
    t.is(found[0]?.reason, reason, JSON.stringify(found));
    const theirs = blkid(path);
    // blkid's words: dos for mbr, crypto_LUKS for luks.
    t.is(blkidFinding(theirs)?.replace('crypto_LUKS signature', 'luks encryption header'), reason);
  });
}

test('labels are read where the filesystems keep them', async (t) => {
  const e = image('ext4-label', 16);
  run('mkfs.ext4', ['-q', '-F', '-L', 'photos', e]);
  t.is((await ours(e))[0].label, 'photos');
  const b = image('btrfs-label', 128);
  run('mkfs.btrfs', ['-q', '-L', '8c7e9a7c-3d0e-4a8e-9f36-6f1e7f1f2a11', b]);
  t.is((await ours(b))[0].label, '8c7e9a7c-3d0e-4a8e-9f36-6f1e7f1f2a11');
  t.is(blkid(b).LABEL, '8c7e9a7c-3d0e-4a8e-9f36-6f1e7f1f2a11');
});

test('a GPT whose first MiB was wiped is still found by its backup header in the last sector', async (t) => {
  const p = image('gpt-wiped', 16);
  run('sfdisk', ['-q', p], 'label: gpt\n,8M\n');
  const fd = openSync(p, 'r+');
  writeSync(fd, Buffer.alloc(MiB), 0, MiB, 0);
  closeSync(fd);
  t.is((await ours(p))[0]?.reason, 'gpt partition table (backup header at the end)');
});

test('a sparse, never written image is blank; one stray byte in the first or last MiB is not', async (t) => {
  const p = image('blank', 64);
  t.deepEqual(await ours(p), []);
  t.deepEqual(blkid(p), {});
  for (const offset of [12345, 64 * MiB - 7]) {
    const q = image(`stray-${offset}`, 64);
    const fd = openSync(q, 'r+');
    writeSync(fd, Buffer.from([1]), 0, 1, offset);
    closeSync(fd);
    t.deepEqual((await ours(q)).map((f) => f.reason), [`unrecognised data (first non-zero byte at ${offset})`]);
  }
});
