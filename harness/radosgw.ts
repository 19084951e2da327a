// A throwaway single-host Ceph cluster serving S3 on loopback, for the s3
// chunk store's tests: one monitor, one OSD on memstore (RAM, no disk), a
// radosgw, and a user with known keys. Everything (conf, keyring, data, logs,
// admin sockets, pid files) lives in one temp folder; the daemons run in the
// foreground as our children, so nothing outside the folder holds state and
// stop() ends them by pid. No mgr: the monitor creates pools on its own, and
// radosgw only needs the pools and an OSD that is up.
import { randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './listening.ts';
import { killPid, runCommand, type CommandOutput } from '../lib/process.ts';

/** The programs the cluster needs (Debian: ceph-mon, ceph-osd, radosgw, ceph-common; setpriv is util-linux). */
export const CEPH_PROGRAMS = ['setpriv', 'openssl', 'monmaptool', 'ceph-authtool', 'ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph'];

/** Startup on a loaded 2-core machine can take a minute; each stage gets this long. */
const STAGE_DEADLINE_MS = 180_000;
/** one `ceph` CLI call: it retries the monitor on its own until this */
const CLI_TIMEOUT_MS = 30_000;

export interface RadosgwOptions {
  /** RAM the memstore OSD may fill (default 1 GiB: a 300 MB tree plus rgw's own objects) */
  memstoreBytes?: number;
}

export interface Radosgw {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  port: number;
  /** radosgw's TLS port (s3s://), its certificate self-signed: `ca` */
  tlsPort: number;
  ca: string;
  accessKey: string;
  secretKey: string;
  dir: string;
  /** ms from start() to radosgw answering, and to the user existing */
  startMs: number;
  /** `s3://key:secret@127.0.0.1:port/bucket` (`s3s://` on tlsPort when tls) */
  storeUrl(bucket: string, tls?: boolean): string;
  createBucket(name: string): Promise<void>;
  /** Ends every daemon (by pid) and removes the folder; safe to call twice. */
  stop(): Promise<void>;
}

/** The programs missing from PATH (empty when the cluster can run). */
export async function missingCephPrograms(): Promise<string[]> {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  return CEPH_PROGRAMS.filter((p) => !dirs.some((d) => existsSync(path.join(d, p))));
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number, tlsPort: number, memstoreBytes: number): string {
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monPort}]
mon initial members = a
public addr = 127.0.0.1
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
crash dir = ${dir}/crash
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
# a busy shared disk must not stop the monitor (it refuses to run under 5% free by default)
mon data avail warn = 1
mon data avail crit = 0
[mon.a]
mon data = ${dir}/mon
[osd.0]
osd data = ${dir}/osd
osd objectstore = memstore
memstore device bytes = ${memstoreBytes}
[client.rgw]
rgw data = ${dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:${rgwPort} ssl_endpoint=127.0.0.1:${tlsPort} ssl_certificate=${dir}/rgw.crt ssl_private_key=${dir}/rgw.key
`;
}

class Cluster {
  readonly dir: string;
  readonly conf: string;
  private readonly children: ChildProcess[] = [];

  constructor(dir: string) {
    this.dir = dir;
    this.conf = path.join(dir, 'ceph.conf');
  }

  /** Runs a ceph tool against this cluster's conf; throws with its stderr when it fails. */
  async run(cmd: string, args: string[], timeout = CLI_TIMEOUT_MS): Promise<CommandOutput> {
    const r = await runCommand(cmd, ['-c', this.conf, ...args], { timeout });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
    return r;
  }

  /**
   * A daemon in the foreground (-f), its output in log/<name>.out. setpriv
   * execs it with a parent-death signal, so a test worker killed before its
   * teardown (a timeout) leaves no daemon behind.
   */
  daemon(cmd: string, args: string[], name: string): ChildProcess {
    const fd = openSync(path.join(this.dir, 'log', `${name}.out`), 'a');
    try {
      const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd, '-c', this.conf, ...args, '-f'], { stdio: ['ignore', fd, fd] });
      child.on('error', () => {});
      this.children.push(child);
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** Polls `probe` until it resolves true; fails early when a daemon exited, with its log's tail. */
  async until(what: string, probe: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + STAGE_DEADLINE_MS;
    for (;;) {
      const dead = this.children.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead) throw new Error(`${what}: ${dead.spawnargs[3]} exited (${dead.exitCode ?? dead.signalCode}); logs in ${this.dir}/log`);
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${what}: not ready within ${STAGE_DEADLINE_MS / 1000} s; logs in ${this.dir}/log`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    // a throwaway cluster: nothing to flush, and SIGTERM makes an OSD wait on the monitor for seconds
    const exits = this.children.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('close', () => r()))));
    for (const c of this.children) if (c.pid !== undefined) killPid(c.pid, 'SIGKILL');
    await Promise.all(exits);
    this.children.length = 0;
  }
}

async function osdUp(cluster: Cluster): Promise<boolean> {
  const r = await cluster.run('ceph', ['--connect-timeout', '10', 'osd', 'stat', '-f', 'json']);
  return (JSON.parse(r.stdout) as { num_up_osds?: number }).num_up_osds === 1;
}

async function answers(endpoint: string): Promise<boolean> {
  const res = await fetch(endpoint, { signal: AbortSignal.timeout(5000) });
  await res.body?.cancel();
  return res.status === 200;
}

/** Starts the cluster; on failure everything started is stopped and the folder removed (unless ZEROBOOT_KEEP_CEPH is set). */
export async function startRadosgw(opts: RadosgwOptions = {}): Promise<Radosgw> {
  const started = Date.now();
  const dir = await mkdtemp(path.join(tmpdir(), 'zeroboot-ceph-'));
  const cluster = new Cluster(dir);
  const stop = async () => {
    await cluster.stop();
    if (!process.env.ZEROBOOT_KEEP_CEPH) await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const sub of ['run', 'log', 'mon', 'osd', 'rgw', 'crash']) await mkdir(path.join(dir, sub));
    const [monPort, port, tlsPort] = [await freePort(), await freePort(), await freePort()];
    const fsid = randomUUID();
    await writeFile(cluster.conf, cephConf(dir, fsid, monPort, port, tlsPort, opts.memstoreBytes ?? 1 << 30));
    // a self-signed certificate for 127.0.0.1, for s3s://; clients trust it through `ca`
    const cert = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'rgw.key'), '-out', path.join(dir, 'rgw.crt')]);
    if (cert.code !== 0) throw new Error(`openssl req exited ${cert.code}: ${cert.stderr.trim()}`);
    const ca = await readFile(path.join(dir, 'rgw.crt'), 'utf8');

    const keyring = path.join(dir, 'keyring');
    const keys: [string, string[]][] = [
      ['mon.', ['--cap', 'mon', 'allow *']],
      ['client.admin', ['--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']],
      ['osd.0', ['--cap', 'mon', 'allow profile osd', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow profile osd']],
      ['client.rgw', ['--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx', '--cap', 'mgr', 'allow rw']],
    ];
    for (const [i, [name, caps]] of keys.entries()) {
      await cluster.run('ceph-authtool', [keyring, ...(i === 0 ? ['--create-keyring'] : []), '--gen-key', '-n', name, ...caps]);
    }
    const monmap = path.join(dir, 'monmap');
    await cluster.run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap]);
    // --mkfs imports every key of the keyring, so the OSD and radosgw keys exist from the start
    await cluster.run('ceph-mon', ['-i', 'a', '--mkfs', '--monmap', monmap, '--keyring', keyring]);
    cluster.daemon('ceph-mon', ['-i', 'a'], 'mon');

    const osdUuid = randomUUID();
    await cluster.until('the monitor', async () => {
      const r = await cluster.run('ceph', ['--connect-timeout', '10', 'osd', 'new', osdUuid, '0']);
      return r.stdout.trim() === '0';
    });
    await cluster.run('ceph-osd', ['-i', '0', '--mkfs', '--osd-uuid', osdUuid], STAGE_DEADLINE_MS);
    cluster.daemon('ceph-osd', ['-i', '0'], 'osd');
    await cluster.until('the OSD', () => osdUp(cluster));

    cluster.daemon('radosgw', ['-n', 'client.rgw'], 'rgw');
    const endpoint = `http://127.0.0.1:${port}`;
    await cluster.until('radosgw', () => answers(endpoint));

    const accessKey = `ZB${randomBytes(9).toString('hex').toUpperCase()}`;
    const secretKey = randomBytes(24).toString('base64url');
    await cluster.run('radosgw-admin', ['user', 'create', '--uid', 'zeroboot', '--display-name', 'zeroboot', '--access-key', accessKey, '--secret-key', secretKey], STAGE_DEADLINE_MS);

    return {
      endpoint,
      port,
      tlsPort,
      ca,
      accessKey,
      secretKey,
      dir,
      startMs: Date.now() - started,
      storeUrl: (bucket, tls) => `${tls ? 's3s' : 's3'}://${accessKey}:${encodeURIComponent(secretKey)}@127.0.0.1:${tls ? tlsPort : port}/${bucket}`,
      createBucket: (name) => createBucket(endpoint, accessKey, secretKey, name),
      stop,
    };
  } catch (e) {
    const log = await readFile(path.join(dir, 'log', 'rgw.out'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(e as Error).message}${log ? `\nradosgw said: ${log.slice(-1000)}` : ''}`);
  }
}

async function createBucket(endpoint: string, accessKeyId: string, secretAccessKey: string, name: string): Promise<void> {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}
