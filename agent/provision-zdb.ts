// One namespace task run against the node's zdbs, over their unix sockets
// with the admin secret: pick the pool with most room (free space minus what
// namespaces there were promised and have not used), NSNEW, then NSSET
// maxsize, password, public and mode. Idempotent by task id: before NSNEW
// the task is written down in the pool (<zdb dir>/.provision/<task>.json),
// so a task handed out again (the agent restarted, the answer was lost)
// finds its pool and namespace and only applies the settings again, never
// creating a second namespace elsewhere.
import { mkdir, readFile, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../lib/durable-file.ts';
import { RespClient, type RespReply } from '../zdb/resp/client.ts';

export const PROVISION_DIR = '.provision';

export interface NamespaceTaskRequest {
  name: string;
  mode: 'user' | 'seq';
  password?: string;
  public: boolean;
  maxsize: number;
  disk?: string;
}

/** A zdb the agent runs, as the supervisor knows it. */
export interface ZdbTarget {
  disk: string;
  /** The pool's zdb folder (data/, index/ and the task journal under it). */
  dir: string;
  port: number;
  socket: string;
  adminSecret: string;
}

export interface Provisioned {
  disk: string;
  port: number;
  namespace: string;
}

/** The task cannot be done as asked (no room, the name is taken...): the message goes back to the server. */
export class ProvisionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProvisionError';
  }
}

const TASK_ID = /^[0-9a-f]{16}$/;

function journalPath(t: ZdbTarget, taskId: string): string {
  return join(t.dir, PROVISION_DIR, `${taskId}.json`);
}

async function journaled(t: ZdbTarget, taskId: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(journalPath(t, taskId), 'utf8')) as { name?: string }).name;
  } catch {
    return undefined;
  }
}

class Admin {
  private readonly c: RespClient;
  readonly target: ZdbTarget;
  private constructor(c: RespClient, target: ZdbTarget) {
    this.c = c;
    this.target = target;
  }

  static async open(t: ZdbTarget, timeoutMs: number): Promise<Admin> {
    const c = await RespClient.connect({ path: t.socket }, { connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs });
    const a = new Admin(c, t);
    try {
      await a.ok(['AUTH', t.adminSecret]);
    } catch (e) {
      c.close();
      throw e;
    }
    return a;
  }

  async run(args: string[]): Promise<RespReply> {
    return this.c.command(args);
  }

  async ok(args: string[]): Promise<void> {
    const r = await this.c.command(args);
    if (r.type === 'error') throw new ProvisionError(`zdb on ${this.target.disk}: ${args[0]} ${args[0] === 'AUTH' ? '' : args.slice(1, 3).join(' ')} refused: ${r.text}`);
  }

  async names(): Promise<string[]> {
    const r = await this.c.command(['NSLIST']);
    if (r.type !== 'array' || !r.items) throw new ProvisionError(`zdb on ${this.target.disk}: NSLIST gave no list`);
    return r.items.map((i) => (i.type === 'bulk' && i.value ? i.value.toString() : ''));
  }

  async info(name: string): Promise<Map<string, string>> {
    const r = await this.c.command(['NSINFO', name]);
    if (r.type !== 'bulk' || !r.value) throw new ProvisionError(`zdb on ${this.target.disk}: NSINFO ${name} failed${r.type === 'error' ? `: ${r.text}` : ''}`);
    return new Map(
      r.value
        .toString()
        .split('\n')
        .map((l) => l.split(': ') as [string, string])
        .filter((kv) => kv.length === 2),
    );
  }

  /** Bytes the pool can still promise: free space less what its namespaces may still grow by. */
  async room(): Promise<number> {
    const s = await statfs(this.target.dir);
    let promised = 0;
    for (const name of await this.names()) {
      const info = await this.info(name);
      const limit = Number(info.get('data_limits_bytes') ?? 0);
      if (limit > 0) promised += Math.max(0, limit - Number(info.get('data_size_bytes') ?? 0));
    }
    return s.bavail * s.bsize - promised;
  }

  close(): void {
    this.c.close();
  }
}

async function openAll(targets: ZdbTarget[], timeoutMs: number): Promise<{ admins: Admin[]; failures: string[] }> {
  const admins: Admin[] = [];
  const failures: string[] = [];
  for (const t of targets) {
    try {
      admins.push(await Admin.open(t, timeoutMs));
    } catch (e) {
      failures.push(`${t.disk}: ${(e as Error).message}`);
    }
  }
  return { admins, failures };
}

/** Makes (or, for a task seen before, finishes making) the namespace; throws ProvisionError with the reason otherwise. */
export async function provisionNamespace(taskId: string, req: NamespaceTaskRequest, targets: ZdbTarget[], opts: { timeoutMs?: number } = {}): Promise<Provisioned> {
  if (!TASK_ID.test(taskId)) throw new ProvisionError(`task id ${JSON.stringify(taskId.slice(0, 40))} is not 16 hex digits`);
  if (targets.length === 0) throw new ProvisionError('this node runs no zdb');
  const { admins, failures } = await openAll(targets, opts.timeoutMs ?? 10_000);
  try {
    let chosen: Admin | undefined;
    for (const a of admins) if ((await journaled(a.target, taskId)) === req.name) chosen = a;
    const retry = chosen !== undefined;
    if (!chosen) {
      for (const a of admins) {
        if ((await a.names()).includes(req.name)) throw new ProvisionError(`namespace ${req.name} already exists on ${a.target.disk}`);
      }
      const candidates = req.disk === undefined ? admins : admins.filter((a) => a.target.disk === req.disk);
      if (candidates.length === 0) {
        const why = failures.length > 0 ? ` (unreachable: ${failures.join('; ')})` : '';
        throw new ProvisionError(req.disk === undefined ? `no zdb answered${why}` : `no running zdb on disk ${req.disk}${why}`);
      }
      const rooms = await Promise.all(candidates.map(async (a) => ({ a, room: await a.room() })));
      rooms.sort((x, y) => y.room - x.room);
      if (rooms[0].room < req.maxsize) {
        throw new ProvisionError(`no disk has room for ${req.maxsize} bytes (${rooms.map((r) => `${r.a.target.disk}: ${Math.max(0, r.room)} bytes`).join(', ')})`);
      }
      chosen = rooms[0].a;
      await mkdir(dirname(journalPath(chosen.target, taskId)), { recursive: true });
      await writeFileDurably(journalPath(chosen.target, taskId), JSON.stringify({ taskId, name: req.name, at: new Date().toISOString() }) + '\n', 0o600);
    }
    const nsnew = await chosen.run(['NSNEW', req.name]);
    // On a retry the namespace may be there already: it is this task's (the journal says so).
    if (nsnew.type === 'error' && !(retry && /not available/.test(nsnew.text))) throw new ProvisionError(`zdb on ${chosen.target.disk}: NSNEW ${req.name} refused: ${nsnew.text}`);
    await chosen.ok(['NSSET', req.name, 'maxsize', String(req.maxsize)]);
    await chosen.ok(['NSSET', req.name, 'password', req.password ?? '*']);
    await chosen.ok(['NSSET', req.name, 'public', req.public ? '1' : '0']);
    const mode = (await chosen.info(req.name)).get('mode') === 'sequential' ? 'seq' : 'user';
    if (mode !== req.mode) await chosen.ok(['NSSET', req.name, 'mode', req.mode]);
    return { disk: chosen.target.disk, port: chosen.target.port, namespace: req.name };
  } finally {
    for (const a of admins) a.close();
  }
}
