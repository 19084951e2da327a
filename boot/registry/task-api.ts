// The management side of namespace tasks (mounted under /api on the
// management listener, behind its token):
//   POST /nodes/<id>/namespaces[?wait=S]   ask node <id> for a namespace
//   GET  /nodes/<id>/namespaces            that node's tasks
//   GET  /nodes/<id>/namespaces/<task>[?wait=S]
// `wait` holds the answer up to S seconds until the task is finished; the
// number of waiting requests is bounded, as the request body is.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseNamespaceRequest, TaskInputError } from './namespace-request.ts';
import { Refusal } from './refusal.ts';
import { taskView, type Task, type TaskBoard } from './tasks.ts';

export interface TaskApiLimits {
  /** Requests waiting for a task at once. */
  maxWaiters: number;
  /** The longest `wait`, in seconds (below the management listener's idle timeout). */
  maxWaitS: number;
  maxBodyBytes: number;
}

export const DEFAULT_TASK_API_LIMITS: TaskApiLimits = { maxWaiters: 256, maxWaitS: 30, maxBodyBytes: 16 * 1024 };

const ROUTE = /^\/nodes\/([^/]+)\/namespaces(?:\/([^/]*))?\/?$/;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
}

function decoded(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new Refusal(400, `the ${what} in the path is not valid percent-encoding`);
  }
}

export interface NodesView {
  get(nodeId: string): { lastReport: Record<string, unknown> } | undefined;
}

export class TaskApi {
  private readonly board: TaskBoard;
  private readonly nodes: NodesView;
  private readonly limits: TaskApiLimits;
  private readonly now: () => number;
  private waiters = 0;

  constructor(board: TaskBoard, nodes: NodesView, limits: Partial<TaskApiLimits> = {}, now: () => number = Date.now) {
    this.board = board;
    this.nodes = nodes;
    this.limits = { ...DEFAULT_TASK_API_LIMITS, ...limits };
    this.now = now;
  }

  /** Whether `path` (after /api) is one of these routes. */
  static owns(path: string): boolean {
    return ROUTE.test(path);
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    try {
      const m = ROUTE.exec(path)!;
      const nodeId = decoded(m[1], 'node id');
      const taskId = m[2] ? decoded(m[2], 'task id') : undefined;
      const method = req.method ?? 'GET';
      const wait = this.waitOf(query);
      this.checkWaiters(wait);
      if (taskId === undefined && method === 'POST') return await this.create(req, res, nodeId, wait);
      if (method !== 'GET') {
        res.setHeader('Allow', taskId === undefined ? 'GET, POST' : 'GET');
        throw new Refusal(405, `${method} is not supported here; ${taskId === undefined ? 'POST asks for a namespace, GET lists the tasks' : 'GET reads the task'}`);
      }
      if (taskId === undefined) {
        this.board.expire(this.now());
        return send(res, 200, { nodeId, tasks: this.board.forNode(nodeId).map(taskView) });
      }
      const task = this.board.get(taskId, this.now());
      if (!task || task.nodeId !== nodeId) throw new Refusal(404, `node ${nodeId.slice(0, 80)} has no task ${taskId.slice(0, 40)} (tasks are kept in memory, for an hour after they finish)`);
      const t = await this.waitFor(req, task, wait);
      send(res, 200, taskView(t));
    } catch (e) {
      if (e instanceof Refusal) return send(res, e.status, { error: e.message });
      if (e instanceof TaskInputError) return send(res, 400, { error: e.message });
      throw e;
    }
  }

  private waitOf(query: URLSearchParams): number {
    const raw = query.get('wait');
    if (raw === null) return 0;
    const max = this.limits.maxWaitS;
    if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) > max) throw new Refusal(400, `wait must be whole seconds from 0 to ${max}, got "${raw.slice(0, 20)}"`);
    return Number(raw);
  }

  private async create(req: IncomingMessage, res: ServerResponse, nodeId: string, wait: number): Promise<void> {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Refusal(404, `no node ${nodeId.slice(0, 80)} has reported (list them at /api/nodes)`);
    const zdbs = node.lastReport.zdbs;
    if (!Array.isArray(zdbs) || zdbs.length === 0) throw new Refusal(409, `node ${nodeId} runs no zdb (its last report lists none): it has no disk for a namespace`);
    const request = parseNamespaceRequest(await this.body(req, res));
    if (request.disk !== undefined && !zdbs.some((z) => (z as { disk?: unknown }).disk === request.disk)) {
      throw new Refusal(409, `node ${nodeId} runs no zdb on disk ${request.disk} (its zdbs are on ${zdbs.map((z) => (z as { disk?: unknown }).disk).join(', ')})`);
    }
    // Checked again after the body: no task is made for a request that is then refused.
    this.checkWaiters(wait);
    const task = this.board.create(nodeId, request, this.now());
    const t = await this.waitFor(req, task, wait);
    res.setHeader('Location', `/api/nodes/${encodeURIComponent(nodeId)}/namespaces/${t.id}`);
    send(res, t.state === 'pending' ? 202 : 200, taskView(t));
  }

  private body(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    const max = this.limits.maxBodyBytes;
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') return Promise.reject(new Refusal(415, `a namespace request is application/json, got ${JSON.stringify(type.slice(0, 60))}`));
    if (Number(req.headers['content-length'] ?? 0) > max) return Promise.reject(new Refusal(413, `a namespace request may hold at most ${max} bytes`));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        if (size > max) return;
        size += c.length;
        if (size > max) {
          // The client may still be sending: answer, then close rather than read the rest.
          res.setHeader('Connection', 'close');
          res.on('finish', () => req.socket.destroy());
          reject(new Refusal(413, `a namespace request may hold at most ${max} bytes`));
        } else chunks.push(c);
      });
      req.on('end', () => {
        if (size > max) return;
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Refusal(400, 'the body is not JSON'));
        }
      });
      req.on('error', reject);
    });
  }

  private checkWaiters(wait: number): void {
    if (wait > 0 && this.waiters >= this.limits.maxWaiters) throw new Refusal(503, `${this.waiters} requests are waiting for tasks already (the most allowed); ask again without wait, or later`);
  }

  /** The task once finished, or as it is after `seconds` (or when the client goes). */
  private waitFor(req: IncomingMessage, task: Task, seconds: number): Promise<Task> {
    if (task.state !== 'pending' || seconds === 0) return Promise.resolve(task);
    this.waiters++;
    let ended = false;
    return new Promise((resolve) => {
      const done = () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        stop();
        req.socket.off('close', done);
        this.waiters--;
        resolve(task);
      };
      const stop = this.board.subscribe((t) => {
        if (t === task && t.state !== 'pending') done();
      });
      const timer = setTimeout(done, seconds * 1000);
      req.socket.once('close', done);
    });
  }
}
