// Opens full mode's lease backend: the in-memory pool restored from the
// state directory's file (the default: one server, no database), or the
// PostgreSQL table when the configuration names `pg` (several servers, one
// lease state). Either way the caller gets the pool to decide with, the
// listing, and, for the file, the journal that ACKs wait for.
import type { Logger } from '../log.ts';
import { PgState, PgStateError } from '../state/pg.ts';
import { LeasePool, LeasePoolError } from './leases.ts';
import { LeaseFile, LeaseFileError } from './lease-file.ts';
import { PgLeases } from './lease-pg.ts';
import type { LeaseBackend, LeaseListing } from './lease-backend.ts';
import { DhcpServerError } from './sockets.ts';
import type { ServedInterface } from './sockets.ts';
import type { DhcpSettings } from './settings.ts';

export interface Leases {
  backend: LeaseBackend;
  listing: LeaseListing;
  /** The journal an ACK waits for; absent with PostgreSQL, where the decision is committed before the ACK is built. */
  file?: LeaseFile;
  close(): Promise<void>;
}

/** How often offers that ran out are dropped from the in-memory pool. */
const SWEEP_MS = 30_000;

/** `ownThread`: the caller is a thread of DHCP's own, so the lease journal is written on it and synced on a thread of its own (LeaseFile.open). */
export async function openLeases(settings: DhcpSettings, served: ServedInterface[], ourIds: Set<string>, log: Logger, ownThread = false): Promise<Leases> {
  const pc = settings.pool;
  if (!pc) throw new DhcpServerError('server.dhcp.pool is required in full mode');
  const exclude = [...ourIds];
  if (pc.router) exclude.push(pc.router);
  const opts = { start: pc.start, end: pc.end, subnetMask: pc.subnetMask, leaseSeconds: pc.leaseSeconds, exclude, reservations: settings.reservations };
  const leases = await (settings.pg ? openPg(settings.pg, opts, settings.address, log) : openFile(settings.leasesFile, opts, log, ownThread));
  if (!served.some((i) => leases.backend.inSubnet(i.address))) {
    log.warn('dhcp: no served interface is in the pool subnet; only relayed requests will get addresses', {
      pool: `${pc.start}-${pc.end}`,
      interfaces: served.map((i) => `${i.name}=${i.address}`).join(','),
    });
  }
  return leases;
}

type PoolOptions = ConstructorParameters<typeof LeasePool>[0];

function poolError(e: unknown): never {
  if (e instanceof LeasePoolError) throw new DhcpServerError(`server.dhcp.pool: ${e.message}`);
  throw e;
}

/** The pool restored from its file, and the file opened for appending. */
async function openFile(path: string, opts: PoolOptions, log: Logger, syncThread: boolean): Promise<Leases> {
  let pool: LeasePool;
  try {
    pool = new LeasePool(opts);
  } catch (e) {
    poolError(e);
  }
  let file: LeaseFile;
  try {
    const loaded = await LeaseFile.load(path);
    const dropped = pool.restore(loaded.records);
    if (loaded.skipped || dropped) log.warn('dhcp: some stored leases were not restored', { file: path, unreadable: loaded.skipped, outsideSubnet: dropped });
    file = await LeaseFile.open(path, () => pool.eachRecord(), { syncThread });
  } catch (e) {
    if (e instanceof LeaseFileError) throw new DhcpServerError(e.message);
    throw e;
  }
  const sweep = setInterval(() => pool.sweep(), SWEEP_MS);
  sweep.unref();
  return {
    backend: pool,
    listing: pool,
    file,
    async close() {
      clearInterval(sweep);
      await file.close();
    },
  };
}

/** The shared table: its own connection pool, the schema ensured, the subnet's rows read. */
async function openPg(url: string, opts: PoolOptions, server: string, log: Logger): Promise<Leases> {
  let state: PgState;
  try {
    state = await PgState.open(url);
  } catch (e) {
    if (e instanceof PgStateError) throw new DhcpServerError(`dhcp leases: ${e.message}`);
    throw e;
  }
  let leases: PgLeases;
  try {
    leases = await PgLeases.open({ ...opts, state, server, log });
  } catch (e) {
    await state.close().catch(() => undefined);
    if (e instanceof LeasePoolError) poolError(e);
    throw new DhcpServerError(`dhcp leases: cannot use the lease table in PostgreSQL at ${state.where}: ${e instanceof Error ? e.message : String(e)}`);
  }
  log.info('dhcp: leases in PostgreSQL', { database: state.where, leases: leases.list().length });
  return {
    backend: leases,
    listing: leases,
    async close() {
      await leases.close();
      await state.close();
    },
  };
}
