// The boot server's flists and chunks on its node-facing port, through
// `zeroboot serve --config` on loopback with a dir:// chunk store filled by
// `zeroboot flist pack`: the listing, .fl downloads, chunks, refusals, and
// `zeroboot flist unpack --store http://<server>/chunks` giving back the tree.
// Then a zdb:// store (`zeroboot zdb` on loopback) behind a server started in
// this process: the same round trip, a store that goes down (502, one log
// line), and the memory bound on chunks held whole (a client that pipelines
// requests and never reads makes others wait, then 503; its close frees it).
import test from 'ava';
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { killPid } from '../../lib/process.ts';
import { curl as curlIn } from '../helpers/curl.ts';
import { startServe as serve, stopServe as stop } from '../helpers/serve-process.ts';
import { startHttpServer } from '../../boot/http/index.ts';
import type { FlistOptions, HttpServer } from '../../boot/http/index.ts';
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import { createLogger, silentLogger } from '../../boot/log.ts';
import type { Logger } from '../../boot/log.ts';
import { openStore } from '../../flist/stores/open.ts';
import type { ChunkStore } from '../../flist/stores/types.ts';
import { startZdb, removeDir, RawClient } from '../helpers/zdb-process.ts';
import { RespClient } from '../../zdb/resp/client.ts';
import type { ZdbProcess } from '../helpers/zdb-process.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/zeroboot');
let dir = '';

/** curl with the path sent as written; the body passes through this test's folder. */
const curl = (url: string, extra: string[] = []) => curlIn(dir, url, extra);

function zeroboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 180_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every entry under root: type, mode, size, symlink target, content hash. */
async function tree(root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (d: string) => {
    for (const name of (await readdir(d)).sort()) {
      const p = path.join(d, name);
      const st = await lstat(p);
      out[path.relative(root, p)] = {
        mode: st.mode,
        size: st.isFile() ? st.size : 0,
        target: st.isSymbolicLink() ? await readlink(p) : undefined,
        sha: st.isFile() ? sha256(await readFile(p)) : undefined,
      };
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out;
}

/** A tree with multi-chunk, exact-chunk, empty and small files, a symlink and a subfolder. */
async function makeTree(src: string): Promise<void> {
  await mkdir(path.join(src, 'sub/deeper'), { recursive: true });
  await writeFile(path.join(src, 'big'), randomBytes(1_300_000));
  await writeFile(path.join(src, 'exact-512k'), randomBytes(512 * 1024));
  await writeFile(path.join(src, 'empty'), '');
  await writeFile(path.join(src, 'sub/deeper/small'), 'hello\n');
  await symlink('sub/deeper/small', path.join(src, 'link'));
}

/** The chunk ids a dir:// store holds (its <h[0:2]>/<h> files). */
async function chunkIds(store: string): Promise<string[]> {
  const ids: string[] = [];
  for (const prefix of await readdir(store)) for (const name of await readdir(path.join(store, prefix))) if (/^[0-9a-f]{64}$/.test(name)) ids.push(name);
  return ids.sort();
}

let store = '';
let flists = '';
let src = '';
let url = '';
let server: ChildProcess | undefined;
let ids: string[] = [];

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-http-flist-'));
  src = path.join(dir, 'src');
  store = path.join(dir, 'chunks');
  flists = path.join(dir, 'flists');
  await makeTree(src);
  await mkdir(path.join(flists, 'sub'), { recursive: true });
  for (const [name, tag] of [['app.fl', 'a'], ['other.fl', 'b']]) {
    const r = await zeroboot(['flist', 'pack', src, '-o', path.join(flists, name), '--store', `dir://${store}`, '--tag', `custom=${tag}`]);
    if (r.code !== 0) throw new Error(`pack failed: ${r.stderr}`);
  }
  ids = await chunkIds(store);
  // What must not be listed nor served: other names, hidden files, subfolders, a link leading out.
  await writeFile(path.join(dir, 'secret.fl'), 'outside the flists folder\n');
  await writeFile(path.join(flists, 'readme.txt'), 'not an flist\n');
  await writeFile(path.join(flists, '.hidden.fl'), 'hidden\n');
  await writeFile(path.join(flists, 'sub/nested.fl'), 'nested\n');
  await symlink(path.join(dir, 'secret.fl'), path.join(flists, 'escape.fl'));
  await symlink('app.fl', path.join(flists, 'latest.fl'));
  const config = path.join(dir, 'zeroboot.yaml');
  await writeFile(
    config,
    `server:
  address: 127.0.0.1
  dhcp: { mode: off }
  tftp: { enabled: false }
  management: { enabled: false }
  http: { host: 127.0.0.1, port: 0 }
  stateDir: state
flists: { dir: flists, store: "dir://${store}" }
`,
  );
  const s = await serve(config);
  server = s.proc;
  url = s.url;
});

test.after.always(async () => {
  if (server) await stop(server);
  await rm(dir, { recursive: true, force: true });
});

test('the listing: every .fl directly in the folder, with size, sha256 and mtime; at /flists/, /flists and /flists.json', async (t) => {
  const r = await curl(`${url}/flists/`);
  t.is(r.status, 200);
  t.regex(r.headers['content-type'], /^application\/json/);
  const list = JSON.parse(r.body.toString()) as { name: string; size: number; sha256: string; mtime: number }[];
  t.deepEqual(
    list.map((f) => f.name),
    ['app.fl', 'latest.fl', 'other.fl'],
  );
  for (const f of list) {
    const file = path.join(flists, f.name);
    const st = await stat(file);
    t.is(f.size, st.size);
    t.is(f.sha256, execFileSync('sha256sum', [file]).toString().split(' ')[0], f.name);
    t.is(f.mtime, Math.floor(st.mtimeMs / 1000));
  }
  for (const alias of ['/flists', '/flists.json']) t.deepEqual((await curl(`${url}${alias}`)).body, r.body, alias);
  const head = await curl(`${url}/flists/`, ['-I']);
  t.is(head.status, 200);
  t.is(Number(head.headers['content-length']), r.body.length);
});

test.serial('the listing follows the folder: a changed file gets its new sha256, a removed one goes', async (t) => {
  const file = path.join(flists, 'changing.fl');
  await writeFile(file, 'one\n');
  const first = JSON.parse((await curl(`${url}/flists/`)).body.toString()) as { name: string; sha256: string }[];
  t.is(first.find((f) => f.name === 'changing.fl')?.sha256, sha256(Buffer.from('one\n')));
  await writeFile(file, 'two, longer\n');
  const second = JSON.parse((await curl(`${url}/flists/`)).body.toString()) as { name: string; sha256: string }[];
  t.is(second.find((f) => f.name === 'changing.fl')?.sha256, sha256(Buffer.from('two, longer\n')));
  await rm(file);
  const third = JSON.parse((await curl(`${url}/flists/`)).body.toString()) as { name: string }[];
  t.false(third.some((f) => f.name === 'changing.fl'));
});

test('a .fl downloads as its bytes, with validators, ranges and HEAD', async (t) => {
  const bytes = await readFile(path.join(flists, 'app.fl'));
  const r = await curl(`${url}/flists/app.fl`);
  t.is(r.status, 200);
  t.deepEqual(r.body, bytes);
  t.truthy(r.headers.etag);
  t.truthy(r.headers['last-modified']);
  const range = await curl(`${url}/flists/app.fl`, ['-r', '0-15']);
  t.is(range.status, 206);
  t.is(range.body.toString('latin1'), 'SQLite format 3\0');
  t.is(range.headers['content-range'], `bytes 0-15/${bytes.length}`);
  t.is((await curl(`${url}/flists/app.fl`, ['-H', `If-None-Match: ${r.headers.etag}`])).status, 304);
  const head = await curl(`${url}/flists/app.fl`, ['-I']);
  t.is(head.status, 200);
  t.is(Number(head.headers['content-length']), bytes.length);
  t.deepEqual((await curl(`${url}/flists/latest.fl`)).body, bytes, 'a link inside the folder is served');
});

test('a chunk is the store file byte for byte, under both layouts, immutable, ETag = id, with ranges', async (t) => {
  t.true(ids.length >= 4);
  for (const id of ids) {
    const bytes = await readFile(path.join(store, id.slice(0, 2), id));
    const r = await curl(`${url}/chunks/${id.slice(0, 2)}/${id}`);
    t.is(r.status, 200, id);
    t.deepEqual(r.body, bytes, id);
    t.is(r.headers['content-type'], 'application/octet-stream');
    t.is(r.headers.etag, `"${id}"`);
    t.regex(r.headers['cache-control'], /immutable/);
    t.regex(r.headers['cache-control'], /max-age=\d{6,}/);
  }
  const id = ids[0];
  const bytes = await readFile(path.join(store, id.slice(0, 2), id));
  t.deepEqual((await curl(`${url}/chunks/${id}`)).body, bytes, 'the flat layout');
  const range = await curl(`${url}/chunks/${id}`, ['-r', '10-19']);
  t.is(range.status, 206);
  t.deepEqual(range.body, bytes.subarray(10, 20));
  t.is((await curl(`${url}/chunks/${id}`, ['-H', `If-None-Match: "${id}"`])).status, 304);
  const head = await curl(`${url}/chunks/${id}`, ['-I']);
  t.is(head.status, 200);
  t.is(Number(head.headers['content-length']), bytes.length);
});

test('404: a chunk the store lacks, an flist that is not there, names that are not offered', async (t) => {
  const missing = 'ab'.repeat(32);
  t.false(ids.includes(missing));
  t.is((await curl(`${url}/chunks/ab/${missing}`)).status, 404);
  t.is((await curl(`${url}/chunks/${missing}`)).status, 404);
  for (const p of ['/flists/none.fl', '/flists/readme.txt', '/flists/.hidden.fl', '/flists/app']) t.is((await curl(`${url}${p}`)).status, 404, p);
});

test('400: malformed chunk ids (prefix not the id, uppercase, short, long, extra segments, empty)', async (t) => {
  const id = ids[0];
  const other = id.startsWith('00') ? '01' : '00';
  const bad = [
    `/chunks/${other}/${id}`,
    `/chunks/${id.slice(0, 3)}/${id}`,
    `/chunks/${id.slice(0, 2).toUpperCase()}/${id.toUpperCase()}`,
    `/chunks/${id.toUpperCase()}`,
    `/chunks/${id.slice(0, 63)}`,
    `/chunks/${id}0`,
    `/chunks/${id.slice(0, 2)}/${id}/x`,
    `/chunks/${id.slice(0, 2)}/${id.slice(2, 4)}/${id}`,
    `/chunks/${id.slice(0, 2)}/`,
    '/chunks/',
    '/chunks',
    `/chunks/%${id.slice(0, 2)}/${id}`,
  ];
  for (const p of bad) t.is((await curl(`${url}${p}`)).status, 400, p);
});

test('traversal attempts are refused and never serve a file outside the folder or the store', async (t) => {
  const secret = await readFile(path.join(dir, 'secret.fl'));
  const attempts = [
    '/flists/../secret.fl',
    '/flists/%2e%2e/secret.fl',
    '/flists/..%2fsecret.fl',
    '/flists/%2e%2e%2fsecret.fl',
    '/flists/..%5csecret.fl',
    '/flists/sub/nested.fl',
    '/flists/sub%2fnested.fl',
    '/flists/escape.fl',
    '/flists/..',
    '/flists/app.fl%00.txt',
    '/chunks/../secret.fl',
    '/chunks/../flists/app.fl',
  ];
  for (const p of attempts) {
    const r = await curl(`${url}${p}`);
    t.true(r.status === 400 || r.status === 404, `${p}: ${r.status}`);
    t.false(r.body.includes(secret), p);
  }
  t.is((await curl(`${url}/flists/escape.fl`)).status, 400, 'a link leading out is refused, as in the store');
  t.is((await curl(`${url}/flists/sub%2fnested.fl`)).status, 400);
});

test('chunks written through dir:// read back through http:// (this server): flist unpack of a .fl fetched from it gives the tree', async (t) => {
  const fl = path.join(dir, 'fetched.fl');
  const got = await curl(`${url}/flists/app.fl`);
  t.is(got.status, 200);
  await writeFile(fl, got.body);
  const out = path.join(dir, 'unpacked');
  const r = await zeroboot(['flist', 'unpack', fl, out, '--store', `${url}/chunks`]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await tree(out), await tree(src));
  const verify = await zeroboot(['flist', 'verify', fl, '--store', `${url}/chunks`]);
  t.is(verify.code, 0, verify.stderr);
});

test('other methods are refused; the routes stay up after bad requests', async (t) => {
  t.is((await curl(`${url}/chunks/${ids[0]}`, ['-X', 'PUT', '--data', 'x'])).status, 405);
  t.is((await curl(`${url}/flists/app.fl`, ['-X', 'DELETE'])).status, 405);
  t.is((await curl(`${url}/flists/`)).status, 200);
});

test('a .fl is hashed once per identity: listings reuse the sha256 until the file changes (strace counts its opens)', async (t) => {
  const d = path.join(dir, 'hash-once');
  await mkdir(path.join(d, 'flists'), { recursive: true });
  const one = path.join(d, 'flists/one.fl');
  await writeFile(one, 'first\n');
  await writeFile(path.join(d, 'flists/marker.fl'), 'marker\n');
  const config = path.join(d, 'zeroboot.yaml');
  await writeFile(config, `server:\n  address: 127.0.0.1\n  dhcp: { mode: off }\n  tftp: { enabled: false }\n  management: { enabled: false }\n  http: { host: 127.0.0.1, port: 0 }\nflists: { dir: flists, store: "dir://${store}" }\n`);
  const s = await serve(config);
  const trace = path.join(d, 'trace');
  const tracer = spawn('strace', ['-f', '-qq', '-e', 'trace=openat', '-o', trace, '-p', String(s.proc.pid)], { stdio: 'ignore' });
  const opens = async (name: string) => (await readFile(trace, 'utf8').catch(() => '')).split('\n').filter((l) => l.includes(`/${name}"`)).length;
  // A download opens marker.fl: once its open shows in the trace, strace is attached and everything before it is written out.
  let markers = 0;
  const barrier = async () => {
    markers++;
    await untilTrue('the marker open in the trace', async () => (await curl(`${s.url}/flists/marker.fl`)).status === 200 && (await opens('marker.fl')) >= markers, 60_000);
  };
  const sha = async () => (JSON.parse((await curl(`${s.url}/flists/`)).body.toString()) as { name: string; sha256: string }[]).find((f) => f.name === 'one.fl')?.sha256;
  try {
    await barrier();
    for (let i = 0; i < 3; i++) t.is(await sha(), sha256(Buffer.from('first\n')));
    await barrier();
    t.is(await opens('one.fl'), 1, 'three listings, one hash');
    await writeFile(one, 'second, longer\n');
    t.is(await sha(), sha256(Buffer.from('second, longer\n')));
    t.is(await sha(), sha256(Buffer.from('second, longer\n')));
    await barrier();
    t.is(await opens('one.fl'), 2, 'hashed again once after the change');
  } finally {
    if (tracer.pid) killPid(tracer.pid, 'SIGTERM');
    await new Promise((r) => (tracer.exitCode !== null ? r(null) : tracer.once('close', r)));
    await stop(s.proc);
  }
});

test('serve refuses a bad flists key with one line naming it', async (t) => {
  const cases: [string, RegExp][] = [
    ['flists: { dir: flists, store: "ftp://x" }', /flists\.store: .*unknown scheme "ftp"/],
    ['flists: { dir: flists }', /flists\.store is required/],
    ['flists: { store: "dir:///tmp/x" }', /flists\.dir is required/],
    ['flists: [1]', /flists must be a mapping/],
    [`flists: { dir: no-such-folder, store: "dir://${store}" }`, /flists\.dir: .*no-such-folder cannot be read \(ENOENT\)/],
    [`flists: { dir: flists/readme.txt, store: "dir://${store}" }`, /flists\.dir: .*readme\.txt is not a folder/],
  ];
  for (const [key, expected] of cases) {
    const config = path.join(dir, 'bad.yaml');
    await writeFile(config, `server:\n  address: 127.0.0.1\n  dhcp: { mode: off }\n  tftp: { enabled: false }\n  management: { enabled: false }\n  http: { host: 127.0.0.1, port: 0 }\n${key}\n`);
    const r = await zeroboot(['serve', '--config', config]);
    t.is(r.code, 1, key);
    t.regex(r.stderr, expected, key);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

/** Deadlines for a loaded 2-core machine: upper bounds, not expectations. */
const LOADED = { zdb: { connectTimeoutMs: 60_000, commandTimeoutMs: 60_000 } };

/** The HTTP server in this process, on loopback, with these flists (or none). */
function inProcess(flistsOpt: FlistOptions | undefined, log: Logger = silentLogger): Promise<HttpServer> {
  return startHttpServer({
    store: new MountedStore([]),
    selector: createSelector([], [], []),
    timeline: new BootTimeline(),
    log,
    host: '127.0.0.1',
    port: 0,
    // Only the client's own close may free what it holds here.
    limits: { sendStallMs: 0 },
    timeouts: { idleMs: 0 },
    flists: flistsOpt,
  });
}

async function untilTrue(what: string, check: () => Promise<boolean>, deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('without the flists key, /flists and /chunks answer 404', async (t) => {
  const s = await inProcess(undefined);
  try {
    for (const p of ['/flists/', '/flists', '/flists/app.fl', `/chunks/${ids[0].slice(0, 2)}/${ids[0]}`, `/chunks/${ids[0]}`]) t.is((await curl(`${s.url}${p}`)).status, 404, p);
  } finally {
    await s.close();
  }
});

test('a zdb:// store behind the server: chunks read back through http equal those of the dir store, unpack gives the tree; the store down is a 502 with one log line', async (t) => {
  const zdb = await startZdb();
  const fldir = path.join(dir, 'zdb-flists');
  await mkdir(fldir);
  const zurl = `zdb://127.0.0.1:${zdb.port}`;
  const packed = await zeroboot(['flist', 'pack', src, '-o', path.join(fldir, 'app.fl'), '--store', zurl]);
  t.is(packed.code, 0, packed.stderr);
  const lines: string[] = [];
  const chunks = openStore(zurl, LOADED);
  const s = await inProcess({ dir: fldir, chunks, cacheBytes: 0 }, createLogger({ level: 'warn', write: (l) => lines.push(l) }));
  try {
    // Packing is convergent: the same tree gives the same chunks, byte for byte, whatever the store.
    for (const id of ids) t.deepEqual((await curl(`${s.url}/chunks/${id.slice(0, 2)}/${id}`)).body, await readFile(path.join(store, id.slice(0, 2), id)), id);
    const fl = path.join(dir, 'zdb-fetched.fl');
    await writeFile(fl, (await curl(`${s.url}/flists/app.fl`)).body);
    const out = path.join(dir, 'zdb-unpacked');
    const r = await zeroboot(['flist', 'unpack', fl, out, '--store', `${s.url}/chunks`]);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(await tree(out), await tree(src));
    await zdb.kill();
    for (const id of ids.slice(0, 3)) t.is((await curl(`${s.url}/chunks/${id}`)).status, 502, id);
    const failures = lines.filter((l) => l.includes('chunk store failed'));
    t.is(failures.length, 1, lines.join('\n'));
    t.regex(failures[0], new RegExp(`zdb://127\\.0\\.0\\.1:${zdb.port}`));
    t.is((await curl(`${s.url}/flists/`)).status, 200, 'the listing does not need the store');
  } finally {
    await stopAll(s, chunks, zdb);
  }
});

/** The server, its chunk store, then the zdb process (by pid) and its files. */
async function stopAll(s: HttpServer, chunks: ChunkStore, zdb: ZdbProcess): Promise<void> {
  await s.close();
  await chunks.close();
  await zdb.kill('SIGKILL');
  await removeDir(zdb.dir);
}

/** `zeroboot zdb` holding the chunks of one random file of `size` bytes (a little over 512 KiB each), with its .fl in a folder. */
async function zdbOfRandom(name: string, size: number): Promise<{ zdb: ZdbProcess; chunks: ChunkStore; fldir: string; bigIds: string[]; largest: number }> {
  const zdb = await startZdb();
  const srcDir = path.join(dir, `${name}-src`);
  await mkdir(srcDir);
  await writeFile(path.join(srcDir, 'random'), randomBytes(size));
  const fldir = path.join(dir, `${name}-flists`);
  await mkdir(fldir);
  const zstore = path.join(dir, `${name}-dir-store`);
  const packed = await zeroboot(['flist', 'pack', srcDir, '-o', path.join(fldir, 'big.fl'), '--store', `dir://${zstore}`]);
  if (packed.code !== 0) throw new Error(`pack failed: ${packed.stderr}`);
  const bigIds = await chunkIds(zstore);
  const chunks = openStore(`zdb://127.0.0.1:${zdb.port}`, LOADED);
  let largest = 0;
  for (const id of bigIds) {
    const data = await readFile(path.join(zstore, id.slice(0, 2), id));
    largest = Math.max(largest, data.length);
    await chunks.put(Buffer.from(id, 'hex'), data);
  }
  return { zdb, chunks, fldir, bigIds, largest };
}

test('chunks from a zdb store are kept in a bounded LRU: with the store down, the recently used are still served, the evicted are not', async (t) => {
  const { zdb, chunks, fldir, bigIds, largest } = await zdbOfRandom('lru', 2 << 20);
  t.is(bigIds.length, 4);
  // Room for two chunks, not three.
  const s = await inProcess({ dir: fldir, chunks, cacheBytes: 2 * largest });
  try {
    const [a, b, c, d] = bigIds;
    const get = (id: string) => curl(`${s.url}/chunks/${id}`);
    const bytes = new Map<string, Buffer>();
    for (const id of [a, b, a, c]) {
      const r = await get(id);
      t.is(r.status, 200);
      bytes.set(id, r.body);
    }
    await zdb.kill();
    // a was used after b, so c pushed b out.
    const after = await get(a);
    t.is(after.status, 200, 'a: used last before c came');
    t.deepEqual(after.body, bytes.get(a));
    t.deepEqual((await get(c)).body, bytes.get(c));
    t.is((await get(b)).status, 502, 'b: the least recently used, evicted');
    t.is((await get(d)).status, 502, 'd: never fetched');
  } finally {
    await stopAll(s, chunks, zdb);
  }
});

test('requests for one chunk arriving together share one store fetch (the zdb server counts its commands)', async (t) => {
  const { zdb, chunks, fldir, bigIds } = await zdbOfRandom('single', 1 << 20);
  const s = await inProcess({ dir: fldir, chunks, cacheBytes: 0 });
  const admin = await RespClient.connect({ host: '127.0.0.1', port: zdb.port }, LOADED.zdb);
  const executed = async () => {
    const r = await admin.command(['INFO']);
    return Number(/commands_executed: (\d+)/.exec(r.type === 'bulk' ? String(r.value) : '')?.[1]);
  };
  let client: RawClient | undefined;
  try {
    const id = bigIds[0];
    const size = (await curl(`${s.url}/chunks/${id}`)).body.length;
    const before = await executed();
    // Pipelined in one write: the server parses all 16 in one pass, so their fetches overlap.
    client = await RawClient.connect(s.port);
    client.write(`GET /chunks/${id} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(16));
    await client.waitFor(16 * size, 120_000);
    t.is((client.received().toString('latin1').match(/HTTP\/1\.1 200 OK/g) ?? []).length, 16);
    // One GET for the 16 requests, and this INFO.
    t.is((await executed()) - before, 2);
  } finally {
    client?.close();
    admin.close();
    await stopAll(s, chunks, zdb);
  }
});

test('chunks held whole are bounded: a client pipelining requests it never reads makes others wait, then 503; closing it frees the memory', async (t) => {
  const { zdb, chunks, fldir, bigIds } = await zdbOfRandom('budget', 8 << 20);
  // Room for one chunk held at once (a fetch reserves the largest a chunk can be); a fetch waits 300 ms for room.
  const s = await inProcess({ dir: fldir, chunks, memoryBytes: 3 << 19, waitMs: 300, cacheBytes: 0 });
  let hog: Socket | undefined;
  let trickle: NodeJS.Timeout | undefined;
  try {
    const probe = () => curl(`${s.url}/chunks/${bigIds[0]}`).then((r) => r.status);
    t.is(await probe(), 200);
    hog = await new Promise<Socket>((resolve, reject) => {
      const c = connect(s.port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
    hog.on('error', () => {});
    hog.pause();
    // Requests keep coming, far beyond what loopback buffers: once they are full, the chunk being sent stays held.
    let n = 0;
    const h = hog;
    trickle = setInterval(() => h.write(`GET /chunks/${bigIds[n++ % bigIds.length]} HTTP/1.1\r\nHost: x\r\n\r\n`), 20);
    await untilTrue('a probe answered 503 while the hog holds the budget', async () => (await probe()) === 503);
    const busy = await curl(`${s.url}/chunks/${bigIds[1]}`);
    t.is(busy.status, 503);
    t.is(busy.headers['retry-after'], '1');
    clearInterval(trickle);
    hog.destroy();
    await untilTrue('a probe answered 200 once the hog closed', async () => (await probe()) === 200);
    t.pass();
  } finally {
    clearInterval(trickle);
    hog?.destroy();
    await stopAll(s, chunks, zdb);
  }
});
