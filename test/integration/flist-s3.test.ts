// s3:// against a real Ceph radosgw (harness/radosgw.ts: one monitor, one
// memstore OSD, radosgw, all on loopback in a temp folder), started once for
// the file: the store's get/put/has and its refusals, a 300 MB tree packed
// to it and unpacked from it by the CLI, and chunks written through dir://
// read back through s3.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { StoreAuthError, StoreError } from '../../flist/stores/errors.ts';
import { mapLimit } from '../../flist/stores/limit.ts';
import { openStore } from '../../flist/stores/open.ts';
import { freePort } from '../../harness/listening.ts';
import { missingCephPrograms, startRadosgw, type Radosgw } from '../../harness/radosgw.ts';
import { runCommand } from '../../lib/process.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');
const TREE_MB = 300;

function zeroboot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 900_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One line of error output: the CLI's promise for bad input. */
function oneLine(t: { is(a: unknown, b: unknown, m?: string): void }, stderr: string): string {
  const lines = stderr.trim().split('\n');
  t.is(lines.length, 1, stderr);
  return lines[0];
}

/** path -> sha256 of every regular file under root, streamed (the tree is too big to hold). */
async function digests(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    const h = createHash('sha256');
    for await (const part of createReadStream(p)) h.update(part as Buffer);
    out.set(path.relative(root, p), h.digest('hex'));
  }
  return out;
}

/**
 * About `mb` MB: half random (Snappy cannot shrink it), half text that
 * compresses but never repeats a 512 KiB chunk (so dedupe does not hide
 * transfers), in files from a few bytes to 40 MB.
 */
async function makeTree(root: string, mb: number): Promise<void> {
  const sizes = [40 << 20, 16 << 20, 3_000_000, 512 * 1024, 1 << 20, 100_000, 4096, 1, 0];
  let left = mb * 1_000_000;
  for (let i = 0; left > 0; i++) {
    const size = Math.min(sizes[i % sizes.length], left);
    const sub = path.join(root, `d${i % 7}`);
    await mkdir(sub, { recursive: true });
    if (i % 2 === 0) {
      await writeFile(path.join(sub, `random-${i}.bin`), randomBytes(size));
    } else {
      const parts: Buffer[] = [];
      for (let made = 0, line = 0; made < size; line++) {
        const b = Buffer.from(`file ${i} line ${line}: the quick brown fox jumps over the lazy dog ${line * 7919 % 104729}\n`);
        parts.push(b);
        made += b.length;
      }
      await writeFile(path.join(sub, `text-${i}.txt`), Buffer.concat(parts).subarray(0, size));
    }
    left -= Math.max(size, 1);
  }
}

/** Established TCP connections from this process to 127.0.0.1:port (ss -p names the owner). */
async function socketsTo(port: number): Promise<number> {
  const r = await runCommand('ss', ['-tnpH', 'state', 'established', 'dst', `127.0.0.1:${port}`]);
  return r.stdout.split('\n').filter((l) => l.includes(`pid=${process.pid},`)).length;
}

const missing = await missingCephPrograms();
if (missing.length > 0) {
  test.skip(`s3 stores against Ceph radosgw: skipped, ${missing.join(', ')} not installed (Debian: ceph-mon ceph-osd radosgw ceph-common)`, () => {});
} else {
  let rgw: Radosgw;
  let work: string;
  test.before(async (t) => {
    t.timeout(600_000);
    rgw = await startRadosgw({ memstoreBytes: 1536 << 20 });
    t.log(`Ceph (mon, memstore OSD, radosgw) up in ${(rgw.startMs / 1000).toFixed(1)} s`);
    await rgw.createBucket('chunks');
    work = await mkdtemp(path.join(tmpdir(), 'zb-flist-s3-'));
  });
  test.after.always(async () => {
    await rgw?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test.serial('put, get, has and a missing chunk through s3://, objects named by the hex id, 20 transfers on 20 sockets', async (t) => {
    const store = openStore(rgw.storeUrl('chunks'));
    t.teardown(() => store.close());
    t.is(store.url, `s3://${rgw.accessKey}@127.0.0.1:${rgw.port}/chunks`, 'the secret is not in the url');
    const ids = Array.from({ length: 60 }, () => randomBytes(32));
    const datas = ids.map((_, i) => randomBytes(i === 0 ? 0 : 1 + Math.floor(Math.random() * 600_000)));
    t.false(await store.has(ids[1]));
    await mapLimit(ids, 20, (id, i) => store.put(id, datas[i]));
    t.true((await socketsTo(rgw.port)) >= 20, 'the agent opened a socket per transfer in flight');
    const back = await mapLimit(ids, 20, (id) => store.get(id));
    back.forEach((b, i) => t.true(b?.equals(datas[i]), `chunk ${i}`));
    t.true(await store.has(ids[1]));
    const absent = randomBytes(32);
    t.is(await store.get(absent), undefined);
    t.false(await store.has(absent));
    await store.put(ids[2], datas[2]);
    t.true((await store.get(ids[2]))?.equals(datas[2]), 'a second put of the same chunk changes nothing');

    // rfs's layout: the object key is the id in lowercase hex, at the bucket's root
    const raw = new S3Client({
      endpoint: rgw.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    t.teardown(() => raw.destroy());
    const obj = await raw.send(new GetObjectCommand({ Bucket: 'chunks', Key: ids[3].toString('hex') }));
    t.true(Buffer.from(await obj.Body!.transformToByteArray()).equals(datas[3]));
  });

  test.serial('s3s:// is TLS: radosgw with a private certificate, trusted through the ca option, refused without it', async (t) => {
    const id = randomBytes(32);
    const data = randomBytes(700_000);
    const store = openStore(rgw.storeUrl('chunks', true), { s3: { ca: rgw.ca } });
    t.teardown(() => store.close());
    await store.put(id, data);
    t.true((await store.get(id))?.equals(data));
    t.true(await store.has(id));
    const untrusted = openStore(rgw.storeUrl('chunks', true));
    t.teardown(() => untrusted.close());
    const e = await t.throwsAsync(() => untrusted.get(id), { instanceOf: StoreError });
    t.is(e!.message, `store s3s://${rgw.accessKey}@127.0.0.1:${rgw.tlsPort}/chunks: reading chunk ${id.toString('hex')}: the server's TLS certificate was refused (DEPTH_ZERO_SELF_SIGNED_CERT)`);
    // plain HTTP to the TLS port is not S3 at all: no answer it can take for one
    const plain = openStore(`s3://${rgw.accessKey}:${rgw.secretKey}@127.0.0.1:${rgw.tlsPort}/chunks`, { s3: { timeoutMs: 5000, attempts: 1 } });
    t.teardown(() => plain.close());
    await t.throwsAsync(() => plain.get(id), { instanceOf: StoreError });
  });

  test.serial('a wrong secret or access key is one StoreAuthError line naming the S3 code, never the secret', async (t) => {
    const id = randomBytes(32);
    const cases: [string, RegExp][] = [
      [`s3://${rgw.accessKey}:not-the-secret@127.0.0.1:${rgw.port}/chunks`, /SignatureDoesNotMatch 403/],
      [`s3://NOSUCHKEY:not-the-secret@127.0.0.1:${rgw.port}/chunks`, /InvalidAccessKeyId 403/],
    ];
    for (const [url, code] of cases) {
      const store = openStore(url);
      t.teardown(() => store.close());
      for (const op of [() => store.get(id), () => store.put(id, Buffer.from('x'))]) {
        const e = await t.throwsAsync(op, { instanceOf: StoreAuthError });
        t.regex(e!.message, code);
        t.regex(e!.message, new RegExp(`^store s3://[A-Z0-9]+@127\\.0\\.0\\.1:${rgw.port}/chunks: (reading|writing) chunk ${id.toString('hex')}: the server refused the credentials`));
        t.false(e!.message.includes('not-the-secret') || e!.message.includes('\n'), e!.message);
      }
      // HEAD answers carry no code: the status is enough
      await t.throwsAsync(() => store.has(id), { instanceOf: StoreAuthError, message: /refused the credentials \(HTTP 403\)/ });
    }

    const r = await zeroboot(['flist', 'verify', await smallFlist(), '--store', `s3://${rgw.accessKey}:not-the-secret@127.0.0.1:${rgw.port}/chunks`]);
    t.not(r.code, 0);
    const line = oneLine(t, r.stderr);
    t.regex(line, /refused the credentials \(SignatureDoesNotMatch 403\)/);
    t.false(line.includes('not-the-secret'));
  });

  test.serial('a store that is down, a bucket that does not exist, a server that never answers: one line each', async (t) => {
    const id = randomBytes(32);
    const downPort = await freePort();
    const down = openStore(`s3://k:secret@127.0.0.1:${downPort}/chunks`);
    t.teardown(() => down.close());
    const e = await t.throwsAsync(() => down.get(id), { instanceOf: StoreError });
    t.is(e!.message, `store s3://k@127.0.0.1:${downPort}/chunks: reading chunk ${id.toString('hex')}: cannot reach the server (ECONNREFUSED)`);

    const nobucket = openStore(rgw.storeUrl('nosuchbucket'));
    t.teardown(() => nobucket.close());
    await t.throwsAsync(() => nobucket.put(id, Buffer.from('x')), { instanceOf: StoreError, message: /the bucket "nosuchbucket" does not exist/ });

    // accepts and stays silent: the whole-request deadline ends it
    const held = new Set<net.Socket>();
    const silent = net.createServer((s) => held.add(s.on('error', () => {})));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    t.teardown(() => {
      for (const s of held) s.destroy();
      silent.close();
    });
    const silentPort = (silent.address() as net.AddressInfo).port;
    const slow = openStore(`s3://k:secret@127.0.0.1:${silentPort}/chunks`, { s3: { timeoutMs: 1500, attempts: 5 } });
    t.teardown(() => slow.close());
    const started = Date.now();
    await t.throwsAsync(() => slow.get(id), { instanceOf: StoreError, message: /no answer within 1500 ms/ });
    // the deadline covers the retries: per attempt only, 5 attempts would take 7.5 s
    t.true(Date.now() - started < 6000, `${Date.now() - started} ms`);

    const src = path.join(work, 'down-src');
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, 'f'), randomBytes(1000));
    const fl = path.join(work, 'down.fl');
    const r = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', `s3://k:secret@127.0.0.1:${downPort}/chunks`]);
    t.not(r.code, 0);
    t.regex(oneLine(t, r.stderr), new RegExp(`s3://k@127\\.0\\.0\\.1:${downPort}/chunks: .*cannot reach the server \\(ECONNREFUSED\\)`));
    await t.throwsAsync(readFile(fl), { code: 'ENOENT' }, 'no .fl names chunks that were not written');
  });

  test.serial(`zeroboot flist pack of a ${TREE_MB} MB tree to s3://, then unpack from it: the same bytes`, async (t) => {
    t.timeout(1_200_000);
    const src = path.join(work, 'big');
    let at = Date.now();
    await makeTree(src, TREE_MB);
    t.log(`made the ${TREE_MB} MB tree in ${((Date.now() - at) / 1000).toFixed(1)} s`);
    const fl = path.join(work, 'big.fl');
    at = Date.now();
    const packed = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', rgw.storeUrl('chunks')]);
    t.is(packed.code, 0, packed.stderr);
    const packS = (Date.now() - at) / 1000;
    const dst = path.join(work, 'big-out');
    at = Date.now();
    const unpacked = await zeroboot(['flist', 'unpack', fl, dst, '--store', rgw.storeUrl('chunks')]);
    t.is(unpacked.code, 0, unpacked.stderr);
    const unpackS = (Date.now() - at) / 1000;
    t.log(`pack ${packS.toFixed(1)} s (${(TREE_MB / packS).toFixed(0)} MB/s), unpack ${unpackS.toFixed(1)} s (${(TREE_MB / unpackS).toFixed(0)} MB/s)`);
    const [a, b] = [await digests(src), await digests(dst)];
    t.true(a.size > 10);
    t.deepEqual([...b.entries()].sort(), [...a.entries()].sort());

    // the .fl's route lost the secret: reading by the routes alone is unsigned, and refused with a hint
    const sq = await runCommand('sqlite3', [fl, 'select url from route']);
    t.is(sq.stdout.trim(), `s3://${rgw.accessKey}@127.0.0.1:${rgw.port}/chunks`);
    const anon = await zeroboot(['flist', 'cat', fl, 'd0/random-0.bin']);
    t.not(anon.code, 0);
    t.regex(oneLine(t, anon.stderr), /refused the credentials \(AccessDenied 403\); the URL has no secret/);
  });

  test.serial('chunks written through dir://, copied to s3://, read back through s3 by unpack and verify', async (t) => {
    const fl = await smallFlist();
    const chunkDir = path.join(work, 'small-chunks');
    const dir = openStore(`dir://${chunkDir}`);
    const s3 = openStore(rgw.storeUrl('copied'));
    t.teardown(() => s3.close());
    await rgw.createBucket('copied');
    const ids: Buffer[] = [];
    for (const e of await readdir(chunkDir, { recursive: true, withFileTypes: true })) if (e.isFile()) ids.push(Buffer.from(e.name, 'hex'));
    t.true(ids.length >= 3);
    await mapLimit(ids, 20, async (id) => s3.put(id, (await dir.get(id))!));
    const dst = path.join(work, 'small-out');
    const r = await zeroboot(['flist', 'unpack', fl, dst, '--store', rgw.storeUrl('copied')]);
    t.is(r.code, 0, r.stderr);
    t.deepEqual([...(await digests(dst)).entries()].sort(), [...(await digests(path.join(work, 'small-src'))).entries()].sort());
    const v = await zeroboot(['flist', 'verify', fl, '--store', rgw.storeUrl('copied')]);
    t.is(v.code, 0, v.stderr);
  });

  let small: Promise<string> | undefined;
  /** A small tree packed once to a dir:// store: a few chunks for the tests that need an .fl. */
  function smallFlist(): Promise<string> {
    small ??= (async () => {
      const src = path.join(work, 'small-src');
      await mkdir(src, { recursive: true });
      await writeFile(path.join(src, 'a'), randomBytes(1_200_000));
      await writeFile(path.join(src, 'b.txt'), 'hello s3\n'.repeat(1000));
      const fl = path.join(work, 'small.fl');
      const r = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', `dir://${path.join(work, 'small-chunks')}`]);
      if (r.code !== 0) throw new Error(r.stderr);
      return fl;
    })();
    return small;
  }
}
