// A throwaway PostgreSQL cluster for tests and benchmarks: Debian's binaries
// (postgresql 15), initdb into a temp folder owned by the `postgres` user,
// the postmaster listening on 127.0.0.1 at a free port with its unix socket
// in the same folder (so it never meets the Debian cluster's /run/postgresql).
// The postmaster runs in the foreground as our child, exec'd by setpriv with
// a parent-death signal, so its pid is ours to stop and a killed test worker
// leaves nothing behind. Password authentication over TCP (scram), so the
// URL carries a real password, as a farm's would.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, openSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './listening.ts';
import { killPid, runCommand } from '../lib/process.ts';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
/** The user the cluster runs as: PostgreSQL refuses to run as root. */
const PG_USER = 'postgres';
/** initdb, then the first accepted connection, on a loaded 2-core machine. */
const STAGE_DEADLINE_MS = 120_000;
/** A fast shutdown that has not finished by then is ended with SIGKILL. */
const STOP_DEADLINE_MS = 30_000;

export interface PostgresOptions {
  /** Parent folder of the cluster's temp folder (default the system's temp dir). */
  dir?: string;
  /** Extra server settings (`-c name=value`), e.g. { fsync: 'off' } for a benchmark that says so. */
  settings?: Record<string, string>;
}

export interface Postgres {
  /** postgresql://zeroboot:<password>@127.0.0.1:<port>/postgres */
  url: string;
  /** The postmaster's pid. */
  pid: number;
  port: number;
  /** The cluster's folder (data in data/, socket and log beside it). */
  dir: string;
  /** Ends the postmaster by pid (fast shutdown, SIGKILL after a deadline) and removes the folder; safe to call twice. */
  stop(): Promise<void>;
}

function uidGid(user: string): Promise<{ uid: number; gid: number }> {
  return runCommand('id', ['-u', user]).then(async (u) => {
    const g = await runCommand('id', ['-g', user]);
    if (u.code !== 0 || g.code !== 0) throw new Error(`no user ${user} on this host (Debian's postgresql package creates it)`);
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  });
}

async function runAsPostgres(cmd: string, args: string[]): Promise<void> {
  const r = await runCommand('runuser', ['-u', PG_USER, '--', path.join(PG_BIN, cmd), ...args], { timeout: STAGE_DEADLINE_MS });
  if (r.code !== 0) throw new Error(`${cmd} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

async function untilAccepting(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + STAGE_DEADLINE_MS;
  for (;;) {
    if (exited(child)) throw new Error(`postgres exited (${child.exitCode ?? child.signalCode}): ${(await readFile(logFile, 'utf8').catch(() => '')).slice(-2000)}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    const ok = await c.connect().then(
      () => true,
      () => false,
    );
    await c.end().catch(() => undefined);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${STAGE_DEADLINE_MS / 1000} s; log: ${logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a cluster; on failure everything started is stopped and the folder removed (unless ZEROBOOT_KEEP_PG is set). */
export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  if (!existsSync(path.join(PG_BIN, 'postgres'))) throw new Error(`${PG_BIN}/postgres not found: install Debian's postgresql-15`);
  const { uid, gid } = await uidGid(PG_USER);
  const dir = await mkdtemp(path.join(opts.dir ?? tmpdir(), 'zeroboot-pg-'));
  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const c = child;
      if (c?.pid !== undefined && !exited(c)) {
        const gone = new Promise<void>((r) => c.once('close', () => r()));
        killPid(c.pid, 'SIGINT');
        const timer = setTimeout(() => killPid(c.pid!, 'SIGKILL'), STOP_DEADLINE_MS);
        await gone;
        clearTimeout(timer);
      }
      if (!process.env.ZEROBOOT_KEEP_PG) await rm(dir, { recursive: true, force: true });
    })());
  try {
    // mkdtemp makes it 0700 root's: the postgres user must own it
    chownSync(dir, uid, gid);
    await chmod(dir, 0o700);
    const data = path.join(dir, 'data');
    const password = randomBytes(18).toString('base64url');
    const pwfile = path.join(dir, 'pw');
    await writeFile(pwfile, password + '\n', { mode: 0o600 });
    chownSync(pwfile, uid, gid);
    await runAsPostgres('initdb', ['-D', data, '-U', 'zeroboot', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    await rm(pwfile);
    const port = await freePort();
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: dir,
      max_connections: '200',
      ...opts.settings,
    };
    const logFile = path.join(dir, 'postgres.log');
    const fd = openSync(logFile, 'a');
    chownSync(logFile, uid, gid);
    try {
      const c = spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--pdeathsig', 'KILL', '--',
        path.join(PG_BIN, 'postgres'), '-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])], { stdio: ['ignore', fd, fd] });
      c.on('error', () => undefined);
      child = c;
    } finally {
      closeSync(fd);
    }
    const url = `postgresql://zeroboot:${password}@127.0.0.1:${port}/postgres`;
    await untilAccepting(url, child, logFile);
    return { url, pid: child.pid!, port, dir, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
