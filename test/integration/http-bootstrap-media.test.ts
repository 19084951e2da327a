// The bootstrap grammar's media from `zeroboot serve --config` on loopback,
// built per request by image/media's real builders: a UKI whose .cmdline
// section, an ISO and a USB image whose boot loader configurations carry the
// farm id and extra of the URL; the same request twice gives the same bytes
// (cached), two farms give two media. The kernel is Debian's ipxe.lkrn, a
// real x86 bzImage small enough to build media from in a test. Serial: the
// server lets one address wait for 2 media at a time (the rest get 503).
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { peSectionData } from '../../image/media/index.ts';
import { curl } from '../helpers/curl.ts';
import { startServe, stopServe } from '../helpers/serve-process.ts';

const KERNEL = '/boot/ipxe.lkrn';
let dir = '';
let proc: ChildProcess | undefined;
let url = '';

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-bootstrap-media-'));
  await mkdir(path.join(dir, 'store/zos'), { recursive: true });
  await copyFile(KERNEL, path.join(dir, 'store/zos/vmlinuz'));
  await writeFile(path.join(dir, 'store/zos/initramfs.img'), Buffer.alloc(4096, 7));
  const config = path.join(dir, 'zeroboot.yaml');
  await writeFile(
    config,
    [
      'server:',
      '  address: 127.0.0.1',
      '  dhcp: { mode: off }',
      '  tftp: { enabled: false }',
      '  management: { enabled: false }',
      '  http: { host: 127.0.0.1, port: 0 }',
      `  stateDir: ${dir}/state`,
      'store:',
      `  - { prefix: images, dir: ${dir}/store }`,
      'profiles:',
      '  - name: zos',
      '    kernel: images/zos/vmlinuz',
      '    initrd: images/zos/initramfs.img',
      '    args: { console: ttyS0 }',
      '',
    ].join('\n'),
  );
  const served = await startServe(config, { ...process.env, TMPDIR: dir });
  proc = served.proc;
  url = served.url;
});

test.after.always(async () => {
  if (proc) await stopServe(proc);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const get = (p: string) => curl(dir, `${url}${p}`);
const line = (farm: number, extra: string) => `nomodeset version=v3 runmode=test panic=7200 farmer_id=${farm} console=ttyS0 zeroboot.server=${url} ${extra}`;

test.serial('/uefi/: a UKI with the farm id and extra in its .cmdline section, the same bytes when asked again', async (t) => {
  const a = await get('/uefi/test/31337/zos-debug');
  t.is(a.status, 200, a.body.toString().slice(0, 200));
  t.is(a.body.subarray(0, 2).toString(), 'MZ');
  t.is(peSectionData(a.body, '.cmdline')?.toString(), line(31337, 'zos-debug'));
  t.true(peSectionData(a.body, '.linux')?.subarray(0x202, 0x206).toString() === 'HdrS');
  const again = await get('/uefi/test/31337/zos-debug');
  t.true(again.body.equals(a.body));
  const other = await get('/uefi/test/31338/zos-debug');
  t.is(peSectionData(other.body, '.cmdline')?.toString(), line(31338, 'zos-debug'));
});

test.serial('/iso/: a hybrid ISO whose isolinux configuration carries the command line', async (t) => {
  const r = await get('/iso/test/4242/ssh-user=farmer');
  t.is(r.status, 200, r.body.toString().slice(0, 200));
  t.is(r.body.subarray(0x8001, 0x8006).toString(), 'CD001');
  t.is(r.body.readUInt16BE(510), 0x55aa, 'an MBR: it boots from a USB stick too');
  t.true(r.body.includes(`APPEND ${line(4242, 'ssh-user=farmer')}`));
  t.is(r.headers['content-disposition'], 'attachment; filename="zos-test-4242.iso"');
});

test.serial('/usb/ and /uefimg/: the USB disk image with the command line inside, one build for both names', async (t) => {
  const usb = await get('/usb/test/77/zos-debug');
  t.is(usb.status, 200, usb.body.toString().slice(0, 200));
  t.is(usb.body.readUInt16BE(510), 0x55aa);
  t.true(usb.body.includes(line(77, 'zos-debug')));
  const img = await get('/uefimg/test/77/zos-debug');
  t.true(img.body.equals(usb.body));
});

test.serial('the grammar and its errors on the served configuration', async (t) => {
  t.is((await get('/iso/staging/1')).status, 401);
  t.is((await get('/iso/test/1/x/nosuch')).status, 404);
  t.is((await get('/kernel/zos')).status, 200);
  const script = await get('/ipxe/test/9');
  t.is(script.status, 200);
  t.regex(script.body.toString(), new RegExp(`imgfetch --name kernel ${url}/kernel/zos nomodeset version=v3 runmode=test panic=7200 farmer_id=9 `));
});

test.serial('the built media are kept under the state directory, not the system\'s temporary folder', async (t) => {
  t.is((await get('/uefi/test/5150')).status, 200);
  const [own, ...more] = await readdir(path.join(dir, 'state/media'));
  t.regex(own, /^zeroboot-media-/);
  t.deepEqual(more, []);
  t.true((await readdir(path.join(dir, 'state/media', own))).length > 0, 'the media built so far');
  t.false((await readdir(dir)).some((n) => n.startsWith('zeroboot-media-')), 'nothing in TMPDIR');
});
