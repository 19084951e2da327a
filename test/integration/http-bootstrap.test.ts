// The bootstrap grammar against a running server on loopback, through curl
// with the path sent as written: every format and shape, the reference's
// error codes (401 unknown runmode, 404 missing kernel) and the hostile
// requests (bad farm ids, traversal, encoded slashes, a huge extra). Media
// here come from a stand-in builder that writes down what it was given (the
// real builders have their own test file), so the farm id and command line
// a medium would embed can be read back.
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHttpServer } from '../../boot/http/index.ts';
import type { HttpServer } from '../../boot/http/index.ts';
import type { MediaBuilder, MediaInput } from '../../boot/http/bootstrap-routes.ts';
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import type { Profile } from '../../boot/selection.ts';
import { silentLogger } from '../../boot/log.ts';
import { curl } from '../helpers/curl.ts';

let dir = '';
let server: HttpServer;
const built: { builder: string; cmdline: string }[] = [];
const KERNEL = Buffer.from('fake kernel bytes\n'.repeat(100));
const INITRD_A = Buffer.from('initrd A\n'.repeat(50));
const INITRD_B = Buffer.from('initrd B\n'.repeat(50));

/** A builder that writes its name, the command line and the inputs' bytes, so a test reads back what the medium embeds. */
function recorder(name: string): MediaBuilder {
  return async (input: MediaInput, out: string) => {
    built.push({ builder: name, cmdline: input.cmdline });
    const [k, i] = await Promise.all([readFile(input.kernel), readFile(input.initrd)]);
    await writeFile(out, Buffer.concat([Buffer.from(`${name}\n${input.cmdline}\n`), k, i]));
  };
}

const profiles: Profile[] = [
  { name: 'zos', kernel: 'images/zos/vmlinuz', initrd: ['images/zos/a.img', 'images/zos/b.img'], args: { runmode: 'dev', farmer_id: 5, console: 'ttyS0' } },
  { name: 'gone', kernel: 'images/gone/vmlinuz', initrd: [], args: {} },
  { name: 'noinitrd', kernel: 'images/zos/vmlinuz', initrd: ['images/zos/missing.img'], args: {} },
];

const get = (p: string, extra: string[] = []) => curl(dir, `${server.url}${p}`, extra);

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-bootstrap-'));
  const store = path.join(dir, 'store');
  await mkdir(path.join(store, 'images/zos'), { recursive: true });
  await writeFile(path.join(store, 'images/zos/vmlinuz'), KERNEL);
  await writeFile(path.join(store, 'images/zos/a.img'), INITRD_A);
  await writeFile(path.join(store, 'images/zos/b.img'), INITRD_B);
  // Store files under grammar prefixes: served where the grammar refuses the path (the iPXE binaries UEFI HTTP boot fetches from /ipxe/).
  await mkdir(path.join(store, 'kernel/sub'), { recursive: true });
  await writeFile(path.join(store, 'kernel/sub/raw.bin'), 'raw store file\n');
  await mkdir(path.join(dir, 'ipxe'), { recursive: true });
  await writeFile(path.join(dir, 'ipxe/snponly.efi'), 'fake snponly\n');
  await writeFile(path.join(dir, 'ipxe/prod'), 'shadowed by the grammar\n');
  server = await startHttpServer({
    store: new MountedStore([{ prefix: 'ipxe', dir: path.join(dir, 'ipxe') }, { prefix: '', dir: store }]),
    selector: createSelector(profiles, [], []),
    timeline: new BootTimeline(),
    log: silentLogger,
    host: '127.0.0.1',
    port: 0,
    bootstrap: { profiles, builders: { uki: recorder('uki'), iso: recorder('iso'), usb: recorder('usb') }, cacheParent: path.join(dir, 'cache') },
  });
});

test.after.always(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const REF = 'nomodeset version=v3 runmode=';

test('ipxe: each depth of the grammar gives the reference command line', async (t) => {
  const cases: [string, string][] = [
    ['/ipxe/prod', `${REF}prod panic=7200 console=ttyS0 zeroboot.server=${server.url}`],
    ['/ipxe/test/', `${REF}test panic=7200 console=ttyS0 zeroboot.server=${server.url}`],
    ['/ipxe/dev/1234', `${REF}dev panic=7200 farmer_id=1234 console=ttyS0 zeroboot.server=${server.url}`],
    ['/ipxe/qa/0/zos-debug%20root=___dev___vda', `${REF}qa panic=7200 farmer_id=0 console=ttyS0 zeroboot.server=${server.url} zos-debug root=/dev/vda`],
    ['/ipxe/prod/7/disable-gpu/zos', `${REF}prod panic=7200 farmer_id=7 console=ttyS0 zeroboot.server=${server.url} disable-gpu`],
  ];
  for (const [p, line] of cases) {
    const r = await get(p);
    t.is(r.status, 200, p);
    t.regex(r.headers['content-type'], /^text\/plain/);
    const text = r.body.toString();
    t.true(text.startsWith('#!ipxe\n'), p);
    const fetch = text.split('\n').filter((l) => l.startsWith('imgfetch '));
    t.is(fetch.length, 3, p);
    t.is(fetch[0], `imgfetch --name kernel ${server.url}/kernel/zos ${line} initrd=initrd0 initrd=initrd1 && goto kernel_ok || echo zeroboot: kernel attempt 1 failed, retrying && sleep 3`, p);
  }
});

test('ipxe: the URLs in the script fetch the kernel set (/kernel/<name>, /kernel/<name>/initrd/<n>)', async (t) => {
  const text = (await get('/ipxe/prod/7')).body.toString();
  const urls = [...text.matchAll(/(?:imgfetch --name kernel|initrd --name initrd[0-9]) (\S+)/g)].map((m) => m[1]);
  t.deepEqual([...new Set(urls)], [`${server.url}/kernel/zos`, `${server.url}/kernel/zos/initrd/0`, `${server.url}/kernel/zos/initrd/1`]);
  const bodies = await Promise.all([...new Set(urls)].map((u) => curl(dir, u)));
  t.deepEqual(bodies.map((b) => b.status), [200, 200, 200]);
  t.true(bodies[0].body.equals(KERNEL));
  t.true(bodies[1].body.equals(INITRD_A));
  t.true(bodies[2].body.equals(INITRD_B));
  // The artifact niceties come along: ranges and validators.
  const part = await get('/kernel/zos', ['-r', '5-9']);
  t.is(part.status, 206);
  t.is(part.body.toString(), KERNEL.subarray(5, 10).toString());
});

test('401 for an unknown runmode, on every format', async (t) => {
  for (const f of ['ipxe', 'uefi', 'iso', 'usb', 'uefimg', 'krn']) {
    for (const rm of ['staging', 'PROD', '..', '%2e%2e']) {
      const r = await get(`/${f}/${rm}/1`);
      t.is(r.status, 401, `${f} ${rm}`);
      t.regex(r.body.toString(), /unknown runmode/);
    }
  }
});

test('404 for a missing kernel: unknown name, kernel file gone, initrd gone, initrd number out of range', async (t) => {
  const cases: [string, RegExp][] = [
    ['/ipxe/prod/1/x/nosuch', /missing kernel: no kernel set named "nosuch"/],
    ['/iso/prod/1/x/gone', /missing kernel: a file of kernel set gone/],
    ['/uefi/prod/1/x/noinitrd', /missing kernel/],
    ['/kernel/nosuch', /missing kernel/],
    ['/kernel/gone', /missing kernel: images\/gone\/vmlinuz of kernel set gone is not in the store/],
    ['/kernel/zos/initrd/2', /kernel set zos has 2 initrd/],
    ['/kernel/noinitrd/initrd/0', /missing kernel/],
  ];
  for (const [p, re] of cases) {
    const r = await get(p);
    t.is(r.status, 404, p);
    t.regex(r.body.toString(), re, p);
  }
});

test('hostile requests: bad farm ids, traversal, encoded slashes, huge extra, metacharacters', async (t) => {
  const cases: [string, number][] = [
    ['/ipxe/prod/4294967296', 400],
    ['/ipxe/prod/-1', 400],
    ['/ipxe/prod/0x10', 400],
    ['/ipxe/prod/1e3', 400],
    ['/iso/prod/..%2F..%2Fetc', 400],
    ['/ipxe/prod/1/x/..%2F..%2Fetc%2Fpasswd', 400],
    ['/ipxe/prod/1/x/%2e%2e', 400],
    ['/kernel/..%2Fkernel%2Fraw', 400],
    ['/kernel/../images/zos/vmlinuz', 404],
    ['/kernel/nosuchfile', 404],
    ['/ipxe/prod/1/x/zos/extra', 404],
    ['/ipxe//1', 404],
    ['/ipxe/prod/1/%24%7Bnet0%2Fip%7D', 400],
    ['/ipxe/prod/1/a%0Areboot', 400],
    ['/ipxe/prod/1/a%26%26reboot', 400],
    ['/usb/prod/1/%ZZ', 400],
    [`/ipxe/prod/1/${'a'.repeat(1025)}`, 400],
    [`/uefi/prod/1/${Array.from({ length: 120 }, () => 'abcdefghijklmnop').join('%20')}`, 400],
  ];
  for (const [p, status] of cases) {
    const r = await get(p);
    t.is(r.status, status, p.slice(0, 80));
    t.false(r.body.includes('fake kernel bytes'), p.slice(0, 80));
  }
  // A path longer than Node's header limit never reaches the grammar: the server answers 431 and keeps serving.
  const huge = await get(`/ipxe/prod/1/${'a'.repeat(20_000)}`);
  t.true(huge.status === 431 || huge.status === 400 || huge.status === 414, String(huge.status));
  t.is((await get('/ipxe/prod/1')).status, 200);
});

test('media: each format built once per key with the farm id and extra embedded, named for the farm', async (t) => {
  const formats: [string, string, string][] = [
    ['uefi', 'uki', 'efi'],
    ['iso', 'iso', 'iso'],
    ['usb', 'usb', 'img'],
  ];
  for (const [format, builder, ext] of formats) {
    const r = await get(`/${format}/test/4242/zos-debug`);
    t.is(r.status, 200, format);
    t.is(r.headers['content-disposition'], `attachment; filename="zos-test-4242.${ext}"`);
    const [name, cmdline] = r.body.toString('latin1').split('\n');
    t.is(name, builder);
    t.is(cmdline, `${REF}test panic=7200 farmer_id=4242 console=ttyS0 zeroboot.server=${server.url} zos-debug`);
    // The set's initrds arrive concatenated, in order, after the kernel.
    t.true(r.body.subarray(r.body.length - INITRD_A.length - INITRD_B.length).equals(Buffer.concat([INITRD_A, INITRD_B])));
  }
  const before = built.length;
  const again = await get('/iso/test/4242/zos-debug');
  t.is(again.status, 200);
  t.is(built.length, before, 'served from the cache');
  // uefimg is the USB image: the same cache entry.
  const img = await get('/uefimg/test/4242/zos-debug');
  t.is(img.status, 200);
  t.is(built.length, before);
  t.true(img.body.toString('latin1').startsWith('usb\n'));
  // Another farm is another medium.
  const other = await get('/iso/test/4243/zos-debug');
  t.regex(other.body.toString('latin1'), /farmer_id=4243 /);
  t.is(built.length, before + 1);
  // Ranges work on media (a resumed download).
  const part = await get('/iso/test/4242/zos-debug', ['-r', '0-3']);
  t.is(part.status, 206);
  t.is(part.body.toString(), 'iso\n');
});

test('store files at paths the grammar refuses are served: the iPXE binaries under /ipxe/', async (t) => {
  const efi = await get('/ipxe/snponly.efi');
  t.is(efi.status, 200);
  t.is(efi.body.toString(), 'fake snponly\n');
  t.is((await get('/kernel/sub/raw.bin')).body.toString(), 'raw store file\n');
  // A path the grammar answers stays the grammar's, and a refused path with no file keeps the grammar's status.
  t.true((await get('/ipxe/prod')).body.toString().startsWith('#!ipxe\n'));
  t.is((await get('/ipxe/nosuch.efi')).status, 401);
  t.is((await get('/ipxe/%2e%2e%2fsecret')).status, 401);
});

test('krn: parsed like the others (401, 404 first), then 501 not offered', async (t) => {
  t.is((await get('/krn/staging')).status, 401);
  t.is((await get('/krn/prod/1/x/nosuch')).status, 404);
  const r = await get('/krn/prod/1');
  t.is(r.status, 501);
  t.regex(r.body.toString(), /not offered here: use \/iso\/prod\//);
});

test('HEAD and other methods on the grammar', async (t) => {
  const head = await get('/ipxe/prod/1', ['-I']);
  t.is(head.status, 200);
  t.false(head.body.toString().includes('#!ipxe'));
  t.true(Number(head.headers['content-length']) > 100);
  const post = await get('/ipxe/prod/1', ['-X', 'POST', '-d', 'x']);
  t.is(post.status, 405);
  // The exact /ipxe is still the per-machine script (it wants a MAC).
  const machine = await get('/ipxe');
  t.is(machine.status, 400);
  t.regex(machine.body.toString(), /no valid mac/);
});
