// "Chunks in S3 so that every server serves the same layers": two
// `zeroboot serve` processes, each with its own flists folder holding the
// same .fl, and one s3:// chunk store (a real Ceph radosgw on loopback,
// harness/radosgw.ts). A node may unpack the layer through either server's
// /chunks and gets the packed bytes; a chunk asked of both is one answer.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { missingCephPrograms, startRadosgw, type Radosgw } from '../../harness/radosgw.ts';
import { startServe, stopServe, type ServeProcess } from '../helpers/serve-process.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/zeroboot');

function zeroboot(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 600_000 }, (err, _out, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }));
  });
}

async function digests(root: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.push([path.relative(root, p), createHash('sha256').update(await readFile(p)).digest('hex')]);
  }
  return out.sort();
}

const missing = await missingCephPrograms();
if (missing.length > 0) {
  test.skip(`two servers on one s3 store: skipped, ${missing.join(', ')} not installed`, () => {});
} else {
  let rgw: Radosgw;
  let work: string;
  const servers: ServeProcess[] = [];

  test.before(async (t) => {
    t.timeout(600_000);
    work = await mkdtemp(path.join(tmpdir(), 'zb-s3-servers-'));
    rgw = await startRadosgw({ memstoreBytes: 512 << 20 });
    await rgw.createBucket('layers');
  });

  test.after.always(async () => {
    for (const s of servers) await stopServe(s.proc);
    await rgw?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test.serial('a layer packed once to s3:// is served byte for byte by both servers', async (t) => {
    t.timeout(600_000);
    const src = path.join(work, 'layer');
    await mkdir(path.join(src, 'etc'), { recursive: true });
    // Random (no dedupe, no compression) and larger than one chunk, so the layer is several objects.
    await writeFile(path.join(src, 'big.bin'), randomBytes(3 << 20));
    await writeFile(path.join(src, 'etc/hostname'), 'node\n');
    const fl = path.join(work, 'layer.fl');
    const packed = await zeroboot(['flist', 'pack', src, '-o', fl, '--store', rgw.storeUrl('layers')]);
    t.is(packed.code, 0, packed.stderr);

    for (const name of ['a', 'b']) {
      const dir = path.join(work, name);
      await mkdir(path.join(dir, 'flists'), { recursive: true });
      await copyFile(fl, path.join(dir, 'flists/layer.fl'));
      await writeFile(path.join(dir, 'zeroboot.yaml'), `server:
  address: 127.0.0.1
  dhcp: { mode: off }
  tftp: { enabled: false }
  management: { enabled: false }
  http: { host: 127.0.0.1, port: 0 }
  stateDir: state
flists: { dir: flists, store: "${rgw.storeUrl('layers')}" }
`);
      servers.push(await startServe(path.join(dir, 'zeroboot.yaml')));
    }

    const lists = await Promise.all(servers.map(async (s) => (await (await fetch(`${s.url}/flists/`)).json()) as { name: string; sha256: string }[]));
    t.deepEqual(lists[0].map((f) => [f.name, f.sha256]), lists[1].map((f) => [f.name, f.sha256]));
    const want = await digests(src);
    for (const [i, s] of servers.entries()) {
      const got = path.join(work, `from-${i}.fl`);
      await writeFile(got, Buffer.from(await (await fetch(`${s.url}/flists/layer.fl`)).arrayBuffer()));
      const out = path.join(work, `out-${i}`);
      const r = await zeroboot(['flist', 'unpack', got, out, '--store', `${s.url}/chunks`]);
      t.is(r.code, 0, r.stderr);
      t.deepEqual(await digests(out), want, `through server ${i}`);
    }
    // Every chunk in the bucket asked of both servers: the same bytes, the bucket's.
    const s3 = new S3Client({ endpoint: rgw.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey } });
    try {
      const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: 'layers' }))).Contents ?? []).map((o) => o.Key!);
      t.true(keys.length >= 2, `${keys.length} chunks`);
      for (const key of keys) {
        const id = path.basename(key);
        const stored = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'layers', Key: key }))).Body!.transformToByteArray());
        for (const srv of servers) {
          const r = await fetch(`${srv.url}/chunks/${id.slice(0, 2)}/${id}`);
          t.is(r.status, 200, `${srv.url} ${id}`);
          t.true(Buffer.from(await r.arrayBuffer()).equals(stored), `${srv.url} ${id}`);
        }
      }
    } finally {
      s3.destroy();
    }
  });
}
