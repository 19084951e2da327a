// Tasks the server hands to nodes (today: make a zdb namespace), held in
// memory: a server restart forgets them (a node that already made a
// namespace keeps it). Bounded twice: pending tasks per node, and tasks in
// all (finished ones are kept for reading until they age out, and the
// oldest finished go first when room is short). A pending task that no node
// finished in time fails. Pure: the clock comes in; listeners hear of every
// change, so waiting (long polls, `wait=`) lives outside.
import { randomBytes } from 'node:crypto';
import type { NamespaceRequest } from './namespace-request.ts';
import { Refusal } from './refusal.ts';

export type TaskState = 'pending' | 'done' | 'failed';

export interface NamespaceResult {
  /** The address the node's result came from: where the server (and so its operator) reaches it. */
  address: string;
  port: number;
  namespace: string;
  disk: string;
}

export interface Task {
  id: string;
  nodeId: string;
  kind: 'namespace';
  request: NamespaceRequest & { name: string };
  state: TaskState;
  createdAt: number;
  updatedAt: number;
  /** Times a poll handed it to the node. */
  deliveries: number;
  result?: NamespaceResult;
  error?: string;
}

export interface TaskLimits {
  /** Pending tasks one node may have. */
  perNodePending: number;
  /** Tasks held in all, finished included. */
  total: number;
  /** A pending task fails after this long. */
  pendingMs: number;
  /** A finished task is forgotten after this long. */
  keepMs: number;
}

export const DEFAULT_TASK_LIMITS: TaskLimits = { perNodePending: 16, total: 4096, pendingMs: 10 * 60_000, keepMs: 60 * 60_000 };

export type Outcome = { ok: true; result: NamespaceResult } | { ok: false; error: string };

export class TaskBoard {
  // Map order is creation order: expiry and eviction walk from the oldest.
  private readonly tasks = new Map<string, Task>();
  private readonly listeners = new Set<(t: Task) => void>();
  readonly limits: TaskLimits;

  constructor(limits: Partial<TaskLimits> = {}) {
    this.limits = { ...DEFAULT_TASK_LIMITS, ...limits };
  }

  get size(): number {
    return this.tasks.size;
  }

  /** Hears of every task created or finished; returns the unsubscribe. */
  subscribe(fn: (t: Task) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  create(nodeId: string, request: NamespaceRequest, now: number): Task {
    this.expire(now);
    const pending = this.forNode(nodeId).filter((t) => t.state === 'pending');
    if (pending.length >= this.limits.perNodePending) {
      throw new Refusal(429, `node ${nodeId} already has ${pending.length} pending tasks (the most allowed); wait for them to finish`);
    }
    const id = randomBytes(8).toString('hex');
    const name = request.name ?? `ns-${id}`;
    const same = pending.find((t) => t.request.name === name);
    if (same) throw new Refusal(409, `task ${same.id} for namespace ${name} on node ${nodeId} is still pending`);
    if (this.tasks.size >= this.limits.total && !this.evictFinished()) {
      throw new Refusal(503, `the server holds ${this.tasks.size} tasks, all pending (the most allowed); retry later`);
    }
    const task: Task = { id, nodeId, kind: 'namespace', request: { ...request, name }, state: 'pending', createdAt: now, updatedAt: now, deliveries: 0 };
    this.tasks.set(id, task);
    this.emit(task);
    return task;
  }

  get(id: string, now: number): Task | undefined {
    this.expire(now);
    return this.tasks.get(id);
  }

  forNode(nodeId: string): Task[] {
    return [...this.tasks.values()].filter((t) => t.nodeId === nodeId);
  }

  /** The node's pending tasks, oldest first, counted as delivered. A poll means the node finished with what it had, so all go again. */
  deliver(nodeId: string, max: number, now: number): Task[] {
    this.expire(now);
    const out = this.forNode(nodeId)
      .filter((t) => t.state === 'pending')
      .slice(0, max);
    for (const t of out) t.deliveries++;
    return out;
  }

  hasPending(nodeId: string): boolean {
    for (const t of this.tasks.values()) if (t.nodeId === nodeId && t.state === 'pending') return true;
    return false;
  }

  /**
   * A node's answer. `unknown` when no such task is this node's (another
   * node's task looks the same as none); a finished task stays as it is, so
   * a retried answer changes nothing.
   */
  finish(nodeId: string, id: string, outcome: Outcome, now: number): { status: 'unknown' } | { status: 'finished' | 'already'; task: Task } {
    this.expire(now);
    const t = this.tasks.get(id);
    if (!t || t.nodeId !== nodeId) return { status: 'unknown' };
    if (t.state !== 'pending') return { status: 'already', task: t };
    if (outcome.ok) {
      t.state = 'done';
      t.result = outcome.result;
    } else {
      t.state = 'failed';
      t.error = outcome.error;
    }
    t.updatedAt = now;
    this.emit(t);
    return { status: 'finished', task: t };
  }

  /** Fails pending tasks past pendingMs; forgets finished ones past keepMs. */
  expire(now: number): void {
    for (const t of this.tasks.values()) {
      if (t.state === 'pending' && now - t.createdAt > this.limits.pendingMs) {
        t.state = 'failed';
        t.error = `the node did not finish the task within ${Math.round(this.limits.pendingMs / 1000)} s (is its agent running and polling?)`;
        t.updatedAt = now;
        this.emit(t);
      } else if (t.state !== 'pending' && now - t.updatedAt > this.limits.keepMs) {
        this.tasks.delete(t.id);
      }
    }
  }

  private evictFinished(): boolean {
    for (const t of this.tasks.values()) {
      if (t.state !== 'pending') {
        this.tasks.delete(t.id);
        return true;
      }
    }
    return false;
  }

  private emit(t: Task): void {
    for (const fn of this.listeners) fn(t);
  }
}

/** A task as the management API shows it: the password is never echoed, only whether there is one. */
export function taskView(t: Task): Record<string, unknown> {
  const { password, ...request } = t.request;
  return {
    id: t.id,
    nodeId: t.nodeId,
    kind: t.kind,
    state: t.state,
    request: { ...request, password: password !== undefined },
    createdAt: new Date(t.createdAt).toISOString(),
    updatedAt: new Date(t.updatedAt).toISOString(),
    deliveries: t.deliveries,
    ...(t.result ? { result: t.result } : {}),
    ...(t.error !== undefined ? { error: t.error } : {}),
  };
}
