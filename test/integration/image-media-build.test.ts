// `zeroboot image build` writes the media next to vmlinuz (a real build of
// the small test image): each in the manifest with its size and sha256, the
// UKI's command line the manifest's, and `media: false` leaves them out.
// That two builds give the same media is test/integration/image-build.test.ts
// (it compares every artifact of two builds).
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildImage } from '../../image/build.ts';
import { ISO_FILE, UKI_FILE, USB_FILE } from '../../image/media/all.ts';
import { peSectionData } from '../../image/media/pe-sections.ts';
import { testImageSpec, TEST_CACHE_DIR } from '../helpers/image-kernel.ts';

const run = promisify(execFile);
let base = '';
test.before(async () => {
  base = await mkdtemp(join(tmpdir(), 'zb-media-build-'));
});
test.after.always(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

test('the build writes zos.efi, zos.iso and zos-usb.img, each in the manifest; the UKI embeds the image\'s kernel, initramfs and command line', async (t) => {
  const dir = join(base, 'with');
  const m = await buildImage(testImageSpec({ cmdline: { console: 'ttyS0', runmode: 'test', farmer_id: 9 } }), { cacheDir: TEST_CACHE_DIR, outDir: dir, mtime: 1_700_000_000 });
  for (const f of [UKI_FILE, ISO_FILE, USB_FILE]) {
    const data = await readFile(join(dir, f));
    t.deepEqual(m.artifacts[f], { size: data.length, sha256: createHash('sha256').update(data).digest('hex') }, f);
  }
  const uki = await readFile(join(dir, UKI_FILE));
  t.is(peSectionData(uki, '.cmdline')!.toString(), m.cmdline);
  t.regex(m.cmdline, /farmer_id=9/);
  t.deepEqual(peSectionData(uki, '.linux'), await readFile(join(dir, 'vmlinuz')));
  t.deepEqual(peSectionData(uki, '.initrd'), await readFile(join(dir, 'initramfs.img')));
  const { stdout } = await run('xorriso', ['-indev', join(dir, ISO_FILE), '-osirrox', 'on', '-extract', '/isolinux/isolinux.cfg', join(base, 'isolinux.cfg')]);
  t.is(stdout, '');
  t.regex(await readFile(join(base, 'isolinux.cfg'), 'utf8'), new RegExp(`APPEND ${m.cmdline}\\n`));
  t.false((await readdir(dir)).some((n) => n.startsWith('.')), 'no temporary files left');
});

test('media: false builds without them', async (t) => {
  const dir = join(base, 'without');
  const m = await buildImage(testImageSpec(), { cacheDir: TEST_CACHE_DIR, outDir: dir, media: false });
  const files = await readdir(dir);
  for (const f of [UKI_FILE, ISO_FILE, USB_FILE]) {
    t.false(files.includes(f), f);
    t.false(f in m.artifacts, f);
  }
});
