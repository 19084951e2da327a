// The node API on the node-facing port: reports (POST REPORT_PATH) answered
// from the registry and, with a task board, the node's long poll for its
// tasks (POST TASKS_PATH) and its answers (POST TASK_RESULT_PATH), each a
// message signed by the node. Any machine on the boot network can reach
// them, so they are guarded before the registry sees a byte: JSON only
// (415), a body cap (413, by Content-Length at once, else when the stream
// passes it), and a per-address rate limit (429 with Retry-After, which the
// agent retries). Refusals are logged one line per kind at most every
// FLOOD_LOG_EVERY_MS, with a count, so a flood cannot flood the log. The
// server's routes mount this; tests may use it behind a plain http.Server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { POLL_DOMAIN, REPORT_PATH, RESULT_DOMAIN, TASK_RESULT_PATH, TASKS_PATH } from '../../lib/signed-report.ts';
import { clientIpv4 } from '../leased-addresses.ts';
import type { Logger } from '../log.ts';
import { handleReport, MAX_REPORT_BYTES, REJECT_STATUS } from './handler.ts';
import type { PollHolds } from './long-poll.ts';
import { Refusal } from './refusal.ts';
import type { Outcome, Task, TaskBoard } from './tasks.ts';
import { RateLimit, type RateLimitOptions } from './rate-limit.ts';
import type { NodeRegistry } from './node-registry.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';

export interface ReportHandlerOptions {
  now?: () => number;
  /** Refusals are logged here (rate-limited); none when absent. */
  log?: Logger;
  /** Per client address; default DEFAULT_REPORT_RATE. */
  rate?: Partial<RateLimitOptions>;
  /** Namespace tasks for nodes; without them the task paths answer 404. */
  tasks?: { board: TaskBoard; holds: PollHolds };
  /** Per client address, polls and results together; default DEFAULT_TASK_RATE. */
  taskRate?: Partial<RateLimitOptions>;
  /** Told the node id of each accepted report (for the metrics). */
  accepted?: (nodeId: string) => void;
}

/** A node reports every few minutes and retries with backoff: 10 at once, then one per 2 s, is far above that. */
export const DEFAULT_REPORT_RATE: RateLimitOptions = { burst: 10, perSecond: 0.5, maxClients: 10_000 };
/** A poll every hold time, plus a poll and a result per task: a node working through its most pending tasks stays below. */
export const DEFAULT_TASK_RATE: RateLimitOptions = { burst: 40, perSecond: 2, maxClients: 10_000 };
/** A poll or a task's result is a few hundred bytes. */
export const MAX_TASK_MESSAGE_BYTES = 16 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

/** Logs each kind of refusal at most once per FLOOD_LOG_EVERY_MS, with the count since its last line. */
class RefusalLog {
  private readonly throttle = new LogThrottle(FLOOD_LOG_EVERY_MS);
  private readonly log: Logger | undefined;
  constructor(log: Logger | undefined) {
    this.log = log;
  }
  note(kind: string, from: string, reason: string): void {
    const count = this.throttle.note(kind);
    if (count !== undefined) this.log?.warn('node report refused', { kind, refusedSinceLastLine: count, lastFrom: from, reason: reason.slice(0, 200) });
  }
}

type Refuse = (status: number, kind: string, error: string, extra?: Record<string, unknown>) => void;

/** Reads a JSON request body of at most `max` bytes; undefined (refused already) when it is not one. */
function readBody(req: IncomingMessage, res: ServerResponse, max: number, what: string, refuse: Refuse): Promise<Buffer | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    refuse(415, 'content-type', `${what} is application/json, got ${JSON.stringify(type.slice(0, 60))}`);
    return Promise.resolve(undefined);
  }
  const tooLarge = () => {
    // The client may still be sending: answer, then close rather than read the rest.
    res.setHeader('Connection', 'close');
    res.on('finish', () => req.socket.destroy());
    refuse(413, 'size', `${what} may hold at most ${max} bytes`);
  };
  if (Number(req.headers['content-length'] ?? 0) > max) {
    tooLarge();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        tooLarge();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', () => resolve(undefined));
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** What a node receives of a task: the request itself, password included (it is the node's to set). */
function taskForNode(t: Task): Record<string, unknown> {
  return { id: t.id, kind: t.kind, request: t.request };
}

/** A node's signed answer to one task, checked; a string says what is wrong. */
function outcomeOf(p: Record<string, unknown>, task: Task | undefined, address: string): Outcome | string {
  if (p.ok === false) return typeof p.error === 'string' && p.error.length > 0 ? { ok: false, error: p.error.slice(0, 500) } : 'a failed task needs error (text)';
  if (p.ok !== true) return 'the payload needs ok (true or false)';
  const port = p.port;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65_535) return 'a done task needs port (1 to 65535)';
  if (typeof p.disk !== 'string' || p.disk.length === 0 || p.disk.length > 64) return 'a done task needs disk (its name)';
  if (task && p.namespace !== task.request.name) return `namespace must be the task's, ${task.request.name}`;
  return { ok: true, result: { address, port: port as number, namespace: String(p.namespace), disk: p.disk } };
}

export function reportRequestHandler(registry: NodeRegistry, opts: ReportHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const now = opts.now ?? Date.now;
  const limit = new RateLimit({ ...DEFAULT_REPORT_RATE, ...opts.rate });
  const taskLimit = new RateLimit({ ...DEFAULT_TASK_RATE, ...opts.taskRate });
  const refusals = new RefusalLog(opts.log);
  const tasks = opts.tasks;
  const paths = tasks ? [REPORT_PATH, TASKS_PATH, TASK_RESULT_PATH] : [REPORT_PATH];
  return (req, res) => {
    const from = clientIpv4(req.socket.remoteAddress);
    const refuse: Refuse = (status, kind, error, extra = {}) => {
      refusals.note(kind, from, error);
      send(res, status, { error, ...extra });
    };
    const path = req.url ?? '';
    if (!paths.includes(path)) return refuse(404, 'path', `the node API is POST ${paths.join(', ')}`);
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return refuse(405, 'method', `${path} takes POST`);
    }
    const wait = (path === REPORT_PATH ? limit : taskLimit).take(from, now());
    if (wait > 0) {
      res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
      return refuse(429, 'rate', `too many requests from ${from}; retry in ${Math.ceil(wait / 1000)} s`);
    }
    const failed = (e: Error) => {
      opts.log?.error('the node API failed', { path, error: e.message });
      if (!res.headersSent) send(res, 500, { error: `the server could not handle ${path}: ${e.message}` });
    };
    if (path === REPORT_PATH) {
      readBody(req, res, MAX_REPORT_BYTES, 'a report', refuse)
        .then(async (body) => {
          if (!body) return;
          const r = await handleReport(registry, body, now());
          if (r.status >= 400) refusals.note(String(r.body.code ?? r.status), from, String(r.body.error));
          else opts.accepted?.(String(r.body.nodeId));
          send(res, r.status, r.body);
        })
        .catch(failed);
      return;
    }
    const { board, holds } = tasks!;
    if (path === TASKS_PATH) {
      try {
        // Before the body is read: a stranger's connections cost no signature check once its address is full.
        holds.checkAddress(from);
      } catch (e) {
        return refuse((e as Refusal).status, 'poll-slots', (e as Error).message);
      }
    }
    readBody(req, res, MAX_TASK_MESSAGE_BYTES, path === TASKS_PATH ? 'a poll' : 'a task result', refuse)
      .then((body) => {
        if (!body) return;
        const v = registry.verifyRequest(parseJson(body), path === TASKS_PATH ? POLL_DOMAIN : RESULT_DOMAIN, now());
        if (!v.ok) return refuse(REJECT_STATUS[v.code], v.code, v.reason, { code: v.code });
        if (path === TASKS_PATH) {
          const waitMs = typeof v.payload.waitMs === 'number' && v.payload.waitMs > 0 ? v.payload.waitMs : 0;
          try {
            const cancel = holds.poll(v.nodeId, from, waitMs, (ts) => send(res, 200, { tasks: ts.map(taskForNode) }));
            res.on('close', cancel);
          } catch (e) {
            if (!(e instanceof Refusal)) throw e;
            refuse(e.status, 'poll-slots', e.message);
          }
          return;
        }
        const taskId = v.payload.taskId;
        if (typeof taskId !== 'string' || !/^[0-9a-f]{16}$/.test(taskId)) return refuse(400, 'malformed', 'the payload needs taskId (16 hex digits)');
        const task = board.get(taskId, now());
        const outcome = outcomeOf(v.payload, task?.nodeId === v.nodeId ? task : undefined, from);
        if (typeof outcome === 'string') return refuse(400, 'malformed', outcome);
        const r = board.finish(v.nodeId, taskId, outcome, now());
        if (r.status === 'unknown') return refuse(404, 'unknown-task', `node ${v.nodeId} has no task ${taskId}`);
        send(res, 200, { id: taskId, state: r.task.state, ...(r.status === 'already' ? { already: true } : {}) });
      })
      .catch(failed);
  };
}
