// /init's fetch of an `at: boot` layer (image/layer-fetch.ts) run by the
// real busybox sh on the host, with busybox's wget and sha256sum and the real
// `zeroboot flist unpack`, against a loopback HTTP server that serves the
// .fl and the chunks as the boot server does (/flists/<name>.fl,
// /chunks/<h[0:2]>/<h>) and can answer 503 (busy) first: the fetch retries
// with a growing delay, gives up after the bounded wait, and refuses a .fl
// whose sha256 is not the one baked into the image (without retrying).
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MARKERS } from '../../image/init.ts';
import { LAYER_LIST_PATH, layerFetchFunctions, layerList, layerStep } from '../../image/layer-fetch.ts';
import { ZEROBOOT_PATH } from '../../image/node-runtime.ts';

const run = promisify(execFile);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let base = '';
let bindir = '';
let fl = Buffer.alloc(0);
let other = Buffer.alloc(0);
const LAYER = { files: 3, bytes: 5 + 700_000 + 0 };

test.before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'zb-layer-fetch-'));
  const tree = path.join(base, 'tree');
  await mkdir(path.join(tree, 'bin'), { recursive: true });
  await writeFile(path.join(tree, 'bin/hello'), 'hello', { mode: 0o755 });
  // over one 512 KiB chunk: two chunk requests
  await writeFile(path.join(tree, 'big'), Buffer.alloc(700_000, 7));
  await writeFile(path.join(tree, 'empty'), '');
  await run(BIN, ['flist', 'pack', tree, '-o', path.join(base, 'x.fl'), '--store', `dir://${path.join(base, 'chunks')}`]);
  await writeFile(path.join(tree, 'bin/hello'), 'HELLO', { mode: 0o755 });
  await run(BIN, ['flist', 'pack', tree, '-o', path.join(base, 'other.fl'), '--store', `dir://${path.join(base, 'chunks')}`]);
  fl = await readFile(path.join(base, 'x.fl'));
  other = await readFile(path.join(base, 'other.fl'));
  // busybox's applets first on PATH, as in the initramfs
  bindir = path.join(base, 'bin');
  await mkdir(bindir);
  await run('busybox', ['--install', '-s', bindir]);
});

test.after.always(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

interface Plan {
  /** 503 answers to the .fl before the file. */
  busyFl?: number;
  /** 503 answers to chunk requests before the chunks. */
  busyChunks?: number;
  /** The .fl the server hands out (default the one the image was built with). */
  serve?: Buffer;
}

async function serve(plan: Plan): Promise<{ server: Server; url: string; flTimes: number[] }> {
  let busyFl = plan.busyFl ?? 0;
  let busyChunks = plan.busyChunks ?? 0;
  const flTimes: number[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '';
      if (url === '/flists/x.fl') {
        flTimes.push(Date.now());
        if (busyFl-- > 0) return res.writeHead(503, { 'retry-after': '1' }).end('busy');
        return res.end(plan.serve ?? fl);
      }
      const m = /^\/chunks\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(url);
      if (!m) return res.writeHead(404).end();
      if (busyChunks-- > 0) return res.writeHead(503).end('busy');
      const data = await readFile(path.join(base, 'chunks', m[1], m[2])).catch(() => undefined);
      if (!data) return res.writeHead(404).end();
      res.end(data);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, flTimes };
}

interface Outcome { rc: number; error: string; tries: number; out: string; ms: number; dir: string }

/** Sources the functions into busybox sh and runs `layer_fetch x <sha256>`. */
async function fetchLayer(server: string, wait: number, want = sha(fl)): Promise<Outcome> {
  const work = await mkdtemp(path.join(base, 'run-'));
  const script = `${layerFetchFunctions()}
say() { echo "$*"; }
layer_fetch x ${want}
echo "rc=$? error=$LAYER_ERROR tries=$LAYER_TRIES"
`;
  const env = { PATH: `${bindir}:${process.env.PATH}`, SERVER: server, LAYER_WAIT: String(wait), ZEROBOOT: BIN, LAYERS_DIR: path.join(work, 'layers'), LAYER_TMP: path.join(work, 'tmp'), LAYER_NO_TMPFS: '1' };
  const start = Date.now();
  const { stdout } = await run('busybox', ['sh', '-c', script], { env, timeout: 120_000 });
  const m = /rc=(\d+) error=(\S*) tries=(\d+)/.exec(stdout)!;
  return { rc: Number(m[1]), error: m[2], tries: Number(m[3]), out: stdout, ms: Date.now() - start, dir: path.join(work, 'layers/x') };
}

test('503 three times, then the .fl: fetched on the fourth try after growing delays, unpacked, ZEROBOOT-LAYER counts the layer', async (t) => {
  const s = await serve({ busyFl: 3 });
  t.teardown(() => s.server.close());
  const r = await fetchLayer(s.url, 60);
  t.is(r.rc, 0, r.out);
  t.is(r.tries, 4);
  const m = MARKERS.layer.exec(r.out);
  t.truthy(m, r.out);
  t.deepEqual([m![1], Number(m![2]), Number(m![3])], ['x', LAYER.files, LAYER.bytes]);
  t.is(await readFile(path.join(r.dir, 'bin/hello'), 'utf8'), 'hello');
  // Equal jitter: each wait is at least half its delay (0.5 s, 1 s, 2 s), at most the whole.
  const gaps = s.flTimes.slice(1).map((at, i) => at - s.flTimes[i]);
  t.log(`gaps between tries: ${gaps.join(', ')} ms`);
  gaps.forEach((g, i) => t.true(g >= 250 * 2 ** i, `wait ${i + 1}: ${g} ms`));
});

test('chunks answered 503 at first: the unpack is tried again and succeeds', async (t) => {
  const s = await serve({ busyChunks: 2 });
  t.teardown(() => s.server.close());
  const r = await fetchLayer(s.url, 60);
  t.is(r.rc, 0, r.out);
  t.true(r.tries >= 2, r.out);
  t.regex(r.out, MARKERS.layer);
});

test('a server that stays busy: gives up with error=fetch once the wait is spent, not before and not much after', async (t) => {
  const s = await serve({ busyFl: 1000 });
  t.teardown(() => s.server.close());
  const r = await fetchLayer(s.url, 4);
  t.is(r.rc, 1, r.out);
  t.is(r.error, 'fetch');
  t.true(r.tries >= 3, `${r.tries} tries`);
  t.true(r.ms >= 2000 && r.ms < 4000 + 8000, `${r.ms} ms`);
  t.notRegex(r.out, MARKERS.layer);
});

test('a refused connection is retried the same way and ends in error=fetch', async (t) => {
  const s = await serve({});
  const url = s.url;
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
  const r = await fetchLayer(url, 2);
  t.is(r.rc, 1, r.out);
  t.is(r.error, 'fetch');
  t.true(r.tries >= 2, `${r.tries} tries`);
});

test('a swapped .fl on the server (another sha256 than the image recorded) is refused at once, nothing unpacked', async (t) => {
  const s = await serve({ serve: other });
  t.teardown(() => s.server.close());
  const r = await fetchLayer(s.url, 60);
  t.is(r.rc, 1, r.out);
  t.is(r.error, 'sha256-mismatch');
  t.is(r.tries, 1);
  t.notRegex(r.out, MARKERS.layer);
  await t.throwsAsync(readFile(path.join(r.dir, 'bin/hello')));
});

test('the jitter is random: nodes that booted together do not retry in step', async (t) => {
  const script = `${layerFetchFunctions()}
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do layer_random 1000; done
`;
  const { stdout } = await run('busybox', ['sh', '-c', script], { env: { PATH: `${bindir}:${process.env.PATH}` } });
  const values = stdout.trim().split('\n').map(Number);
  t.is(values.length, 20);
  t.true(values.every((v) => Number.isInteger(v) && v >= 0 && v < 1000), stdout);
  t.true(new Set(values).size >= 10, stdout);
});

test('the /init step: the list baked in the image, then one ZEROBOOT-FAIL line (reason, name, error, what wget said) or ZEROBOOT-LAYER', async (t) => {
  const s = await serve({ serve: other });
  t.teardown(() => s.server.close());
  const work = await mkdtemp(path.join(base, 'step-'));
  const list = path.join(work, 'layers.list');
  await writeFile(list, layerList([{ name: 'x', sha256: sha(fl) }]));
  // The step as /init runs it, its two absolute paths pointed at the test's files.
  const step = layerStep().replaceAll(`/${LAYER_LIST_PATH}`, list).replace(`/${ZEROBOOT_PATH}`, BIN);
  const script = `${layerFetchFunctions()}
say() { echo "$*"; }
fail() { say "ZEROBOOT-FAIL reason=$*"; exit 3; }
${step}
echo step-done
`;
  const env = { PATH: `${bindir}:${process.env.PATH}`, SERVER: s.url.replace('http://', ''), LAYER_WAIT: '5', LAYERS_DIR: path.join(work, 'layers'), LAYER_TMP: path.join(work, 'tmp'), LAYER_NO_TMPFS: '1' };
  const bad = await run('busybox', ['sh', '-c', script], { env }).then((r) => ({ code: 0, stdout: r.stdout }), (e: { code: number; stdout: string }) => e);
  t.is(bad.code, 3);
  t.regex(bad.stdout, new RegExp(`^ZEROBOOT-FAIL reason=layer-fetch name=x error=sha256-mismatch tries=1 server=${s.url} said=\\S*$`, 'm'));
  t.regex(bad.stdout, MARKERS.fail);

  s.server.close();
  const good = await serve({});
  t.teardown(() => good.server.close());
  const ok = await run('busybox', ['sh', '-c', script], { env: { ...env, SERVER: good.url } });
  t.regex(ok.stdout, /^ZEROBOOT-LAYER name=x files=3 bytes=700005\nstep-done$/m);
});
