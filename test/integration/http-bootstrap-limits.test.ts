// The media cache's limits against a running server (node:http requests on
// loopback): one build per key however many ask at once, at most maxBuilds
// builds at a time, a 503 with Retry-After once maxQueuedBuilds wait, and
// the kept files bounded in bytes (least recently used dropped, a file being
// downloaded still finishes), and a build that hangs stopped at
// buildTimeoutMs with its process group killed. The builder is a stand-in
// the test holds at a gate, so "at once" is exact rather than a race against
// a real build.
import test from 'ava';
import { get as httpGet } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTool } from '../../image/media/tools.ts';
import type { BootstrapOptions, MediaBuilder, MediaInput } from '../../boot/http/bootstrap-routes.ts';
import { startBootstrapServer } from '../../harness/bootstrap-server.ts';

const MEDIUM_BYTES = 256 * 1024;

/** A builder held at a gate: counts calls and the most running at once; each medium is MEDIUM_BYTES with the command line first. */
class GatedBuilder {
  calls = 0;
  running = 0;
  maxRunning = 0;
  private open = false;
  private waiters: (() => void)[] = [];
  readonly build: MediaBuilder = async (input: MediaInput, out: string) => {
    this.calls++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (!this.open) await new Promise<void>((r) => this.waiters.push(r));
      if (input.cmdline.includes('farmer_id=13 ')) throw new Error('farm 13 fails to build');
      const body = Buffer.alloc(MEDIUM_BYTES, 0x2e);
      body.write(`${input.cmdline}\n`);
      await writeFile(out, body);
    } finally {
      this.running--;
    }
  };
  release(): void {
    this.open = true;
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once `n` builds are held at the gate. */
  async held(n: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.waiters.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.waiters.length} of ${n} builds reached the gate`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET from `from` (a loopback address: all of 127/8 is local), body collected. */
function request(url: string, from = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false, localAddress: from }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function withServer(t: { teardown(fn: () => Promise<void>): void }, bootstrap: Partial<BootstrapOptions>, builder: GatedBuilder): Promise<{ url: string; cacheDir: () => Promise<string[]> }> {
  const server = await startBootstrapServer(Buffer.from('kernel'), Buffer.from('initrd'), { builders: { uki: builder.build, iso: builder.build, usb: builder.build }, ...bootstrap });
  const { cacheParent } = server;
  t.teardown(async () => {
    builder.release();
    await server.close();
  });
  return {
    url: server.url,
    // Everything in the cache's own folder: media kept, and any build folder left behind.
    cacheDir: async () => {
      const [own] = await readdir(cacheParent);
      return readdir(path.join(cacheParent, own));
    },
  };
}

test('single flight: 12 requests for one medium at once make one build, and all get it', async (t) => {
  const builder = new GatedBuilder();
  const { url } = await withServer(t, { maxBuilds: 4, maxQueuedBuilds: 4, maxMediaPerAddress: 100 }, builder);
  const answers = Array.from({ length: 12 }, () => request(`${url}/iso/prod/7`));
  await builder.held(1);
  // Give the other requests time to arrive and join (they would start their own builds if unshared).
  await new Promise((r) => setTimeout(r, 300));
  builder.release();
  const done = await Promise.all(answers);
  t.is(builder.calls, 1);
  for (const a of done) {
    t.is(a.status, 200);
    t.is(a.body.length, MEDIUM_BYTES);
    t.true(a.body.toString('latin1').startsWith('nomodeset version=v3 runmode=prod panic=7200 farmer_id=7 '));
  }
});

test('build concurrency: with maxBuilds 2, five farms build two at a time, and all finish', async (t) => {
  const builder = new GatedBuilder();
  const { url } = await withServer(t, { maxBuilds: 2, maxQueuedBuilds: 10, maxMediaPerAddress: 100 }, builder);
  const answers = [1, 2, 3, 4, 5].map((farm) => request(`${url}/uefi/prod/${farm}`));
  await builder.held(2);
  await new Promise((r) => setTimeout(r, 300));
  t.is(builder.running, 2, 'the others wait for a slot');
  builder.release();
  const done = await Promise.all(answers);
  t.deepEqual(done.map((a) => a.status), [200, 200, 200, 200, 200]);
  t.is(builder.calls, 5);
  t.is(builder.maxRunning, 2);
});

test('saturation: past maxBuilds running and maxQueuedBuilds waiting, a new medium is a 503 with Retry-After at once', async (t) => {
  const builder = new GatedBuilder();
  const { url } = await withServer(t, { maxBuilds: 1, maxQueuedBuilds: 2, maxMediaPerAddress: 100 }, builder);
  const accepted = [1, 2, 3].map((farm) => request(`${url}/usb/prod/${farm}`));
  await builder.held(1);
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  const refused = await Promise.race([request(`${url}/usb/prod/4`), new Promise<Answer>((r) => setTimeout(() => r({ status: -1, headers: {}, body: Buffer.alloc(0) }), 10_000))]);
  t.is(refused.status, 503, 'refused rather than queued');
  t.true(Date.now() - started < 10_000);
  t.is(refused.headers['retry-after'], '5');
  t.regex(refused.body.toString(), /busy: too many boot media being built/);
  // A medium already being built is no new work: joining it is not refused.
  const joined = request(`${url}/usb/prod/1`);
  // Scripts and kernels never wait for builds.
  t.is((await request(`${url}/ipxe/prod/4`)).status, 200);
  builder.release();
  t.deepEqual((await Promise.all([...accepted, joined])).map((a) => a.status), [200, 200, 200, 200]);
  t.is(builder.calls, 3);
  // Once the builds are done, the refused one is accepted.
  t.is((await request(`${url}/usb/prod/4`)).status, 200);
});

test('per address: a third medium waiting from one address is a 503, another address still gets its own', async (t) => {
  const builder = new GatedBuilder();
  const { url } = await withServer(t, { maxBuilds: 1, maxQueuedBuilds: 8, maxMediaPerAddress: 2 }, builder);
  const mine = [1, 2].map((farm) => request(`${url}/iso/prod/${farm}`));
  await builder.held(1);
  await new Promise((r) => setTimeout(r, 300));
  const third = await Promise.race([request(`${url}/iso/prod/3`), new Promise<Answer>((r) => setTimeout(() => r({ status: -1, headers: {}, body: Buffer.alloc(0) }), 10_000))]);
  t.is(third.status, 503, 'refused rather than queued');
  t.is(third.headers['retry-after'], '5');
  t.regex(third.body.toString(), /2 boot media requests from your address/);
  const other = request(`${url}/iso/prod/3`, '127.0.0.2');
  // A script is no medium: never counted.
  t.is((await request(`${url}/ipxe/prod/3`)).status, 200);
  builder.release();
  t.deepEqual((await Promise.all([...mine, other])).map((a) => a.status), [200, 200, 200]);
  // Answered: the address may ask again.
  t.is((await request(`${url}/iso/prod/4`)).status, 200);
});

test('a failed build: 500, nothing kept, its slot and work folder freed; asked again, it is built again', async (t) => {
  const builder = new GatedBuilder();
  builder.release();
  const { url, cacheDir } = await withServer(t, { maxBuilds: 1, maxQueuedBuilds: 0 }, builder);
  const failed = await request(`${url}/usb/prod/13`);
  t.is(failed.status, 500);
  t.regex(failed.body.toString(), /building the usb medium failed; see the server log/);
  t.deepEqual(await cacheDir(), []);
  // With one build slot and no queue, a slot still held would make this a 503.
  t.is((await request(`${url}/usb/prod/14`)).status, 200);
  t.is((await request(`${url}/usb/prod/13`)).status, 500);
  t.is(builder.calls, 3, 'the failure was not kept');
});

test('bytes: the kept media stay under maxCacheBytes, least recently used first; an evicted medium is rebuilt', async (t) => {
  const builder = new GatedBuilder();
  builder.release();
  const { url, cacheDir } = await withServer(t, { maxCacheBytes: 2.5 * MEDIUM_BYTES }, builder);
  for (const farm of [1, 2]) t.is((await request(`${url}/iso/prod/${farm}`)).status, 200);
  t.is((await cacheDir()).length, 2);
  // Farm 1 used again: farm 2 is now the least recently used.
  t.is((await request(`${url}/iso/prod/1`)).status, 200);
  t.is(builder.calls, 2);
  t.is((await request(`${url}/iso/prod/3`)).status, 200);
  const kept = await cacheDir();
  t.is(kept.length, 2, 'one dropped to stay under the bound');
  t.is(builder.calls, 3);
  t.is((await request(`${url}/iso/prod/1`)).status, 200);
  t.is(builder.calls, 3, 'farm 1 was kept');
  t.is((await request(`${url}/iso/prod/2`)).status, 200);
  t.is(builder.calls, 4, 'farm 2 was dropped and is built again');
});

test('bytes: a medium larger than the whole cache is served in full, then dropped', async (t) => {
  const builder = new GatedBuilder();
  builder.release();
  const { url, cacheDir } = await withServer(t, { maxCacheBytes: MEDIUM_BYTES / 2, maxMediaPerAddress: 100 }, builder);
  const a = await request(`${url}/uefi/prod/9`);
  t.is(a.status, 200);
  t.is(a.body.length, MEDIUM_BYTES);
  // Dropped as soon as it was open, before a byte was sent: the download read an unlinked file to the end.
  t.deepEqual(await cacheDir(), []);
  // Many waiting for one such medium: each gets it (it is dropped only once every waiter has it open).
  const many = Array.from({ length: 12 }, () => request(`${url}/uefi/prod/10`));
  t.deepEqual((await Promise.all(many)).map((r) => `${r.status} ${r.body.length}`), Array(12).fill(`200 ${MEDIUM_BYTES}`));
  t.deepEqual(await cacheDir(), []);
});

/** Stands in for a hung xorriso: a shell (its pid written to `pidFile`) and a child of its own, both sleeping, run the way image/media runs its tools. */
function hungBuilder(pidFile: string, hangs: (input: MediaInput) => boolean): MediaBuilder {
  return async (input, out, signal) => {
    if (hangs(input)) await runTool('sh', ['-c', `echo $$ > ${pidFile}; sleep 600 & sleep 600`], { signal });
    await writeFile(out, Buffer.alloc(MEDIUM_BYTES, 0x2e));
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a hung build: stopped at buildTimeoutMs, its process group killed, its waiters answered 503, the slot freed for the next', async (t) => {
  const pidFile = path.join(await mkdtemp(path.join(tmpdir(), 'zb-hung-')), 'pid');
  t.teardown(() => rm(path.dirname(pidFile), { recursive: true, force: true }));
  const build = hungBuilder(pidFile, (input) => input.cmdline.includes('farmer_id=66 '));
  const server = await startBootstrapServer(Buffer.from('kernel'), Buffer.from('initrd'), { builders: { uki: build, iso: build, usb: build }, maxBuilds: 1, maxQueuedBuilds: 1, maxMediaPerAddress: 100, buildTimeoutMs: 1500 });
  t.teardown(() => server.close());
  const started = Date.now();
  // Two waiting for the hung medium (one build), and another medium queued behind it for the one slot.
  const hung = [request(`${server.url}/iso/prod/66`), request(`${server.url}/iso/prod/66`)];
  const deadline = Date.now() + 30_000;
  while (!(await readFile(pidFile, 'utf8').catch(() => '')).trim()) {
    if (Date.now() > deadline) throw new Error('the hung build never started');
    await new Promise((r) => setTimeout(r, 20));
  }
  const pgid = Number((await readFile(pidFile, 'utf8')).trim());
  t.true(alive(-pgid), 'the tool is running');
  const queued = request(`${server.url}/iso/prod/5`);
  for (const a of await Promise.all(hung)) {
    t.is(a.status, 503);
    t.is(a.headers['retry-after'], '5');
    t.regex(a.body.toString(), /took too long and was stopped/);
  }
  t.true(Date.now() - started >= 1500, 'not before the timeout');
  t.is((await queued).status, 200, 'the queued medium got the freed slot');
  const gone = Date.now() + 10_000;
  while (alive(-pgid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
  t.false(alive(-pgid), 'the whole process group (the shell and its sleeping child) was killed');
  // Not kept: asked again, it is built (and stopped) again.
  await writeFile(pidFile, '');
  t.is((await request(`${server.url}/iso/prod/66`)).status, 503);
});

test('the cache folder: a server whose cache parent is its own sweeps what a crashed run left there; a shared parent is left alone', async (t) => {
  const parent = await mkdtemp(path.join(tmpdir(), 'zb-media-parent-'));
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  await mkdir(path.join(parent, 'zeroboot-media-crashed/work-0'), { recursive: true });
  await writeFile(path.join(parent, 'unrelated'), 'x');
  const builder = new GatedBuilder();
  builder.release();
  const shared = await startBootstrapServer(Buffer.from('kernel'), Buffer.from('initrd'), { builders: { uki: builder.build, iso: builder.build, usb: builder.build }, cacheParent: parent });
  await shared.close();
  t.true((await readdir(parent)).includes('zeroboot-media-crashed'), 'without sweepCache another run\'s folder is not touched');
  const own = await startBootstrapServer(Buffer.from('kernel'), Buffer.from('initrd'), { builders: { uki: builder.build, iso: builder.build, usb: builder.build }, cacheParent: parent, sweepCache: true });
  t.teardown(() => own.close());
  const left = await readdir(parent);
  t.false(left.includes('zeroboot-media-crashed'));
  t.true(left.includes('unrelated'), 'only the cache\'s own folders go');
  t.is(left.filter((n) => n.startsWith('zeroboot-media-')).length, 1, 'the running cache\'s folder');
});
