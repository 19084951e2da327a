// The node's side of namespace provisioning: a long poll to the boot server
// for this node's tasks (the node opens every connection, so it needs no
// open port and the server needs no route to it), each poll and each answer
// signed with the node key in its own domain. Tasks run one at a time
// against the node's zdbs (provision-zdb.ts); an answer that cannot be
// delivered leaves the task pending on the server, which hands it out again
// at the next poll, and the journal makes the second run a no-op. Failures
// back off with full jitter, so a rack does not poll in step after an outage.
import { randomBytes } from 'node:crypto';
import { POLL_DOMAIN, RESULT_DOMAIN, signPayload, TASK_RESULT_PATH, TASKS_PATH } from '../lib/signed-report.ts';
import type { Identity } from './identity.ts';
import { provisionNamespace, type NamespaceTaskRequest, type ZdbTarget } from './provision-zdb.ts';
import { postJson } from './http-post.ts';

export interface ProvisionerOptions {
  /** Base URL of the boot server. */
  server: string;
  identity: Identity;
  /** The zdbs running now (read at each task). */
  zdbs: () => ZdbTarget[];
  /** How long the server may hold a poll with nothing to do (it caps this too). */
  waitMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Attempts to deliver one task's answer. */
  resultAttempts?: number;
  random?: () => number;
  log?: (msg: string) => void;
}

interface WireTask {
  id: string;
  kind: string;
  request: NamespaceTaskRequest;
}

/** The server answered, with a status that is not a success. */
class ServerAnswerError extends Error {
  readonly status: number;
  readonly retryAfterMs: number;
  constructor(path: string, status: number, reason: string, retryAfterMs: number) {
    super(`${path}: ${status} ${reason}`);
    this.name = 'ServerAnswerError';
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export class Provisioner {
  private readonly opts: ProvisionerOptions;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Tasks this agent ran, with the answer it gave: a task handed out again is answered again without running. */
  private readonly answered = new Map<string, Record<string, unknown>>();

  constructor(opts: ProvisionerOptions) {
    this.opts = opts;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        const tasks = await this.poll();
        failures = 0;
        for (const t of tasks) await this.handle(t);
      } catch (e) {
        if (this.abort.signal.aborted) return;
        failures++;
        const retryAfter = e instanceof ServerAnswerError ? e.retryAfterMs : 0;
        const delay = Math.max(retryAfter, this.backoff(failures));
        this.opts.log?.(`task poll failed (${(e as Error).message}); again in ${delay} ms`);
        await this.sleep(delay);
      }
    }
  }

  private backoff(failures: number): number {
    const base = this.opts.baseDelayMs ?? 1_000;
    const max = this.opts.maxDelayMs ?? 60_000;
    return Math.floor((this.opts.random ?? Math.random)() * Math.min(max, base * 2 ** (failures - 1)));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  private signed(domain: string, extra: Record<string, unknown>): string {
    const payload = { nodeId: this.opts.identity.nodeId, timestamp: Date.now(), nonce: randomBytes(16).toString('hex'), ...extra };
    return JSON.stringify(signPayload(payload, this.opts.identity.privateKey, domain));
  }

  private async post(path: string, body: string, timeoutMs: number): Promise<unknown> {
    const res = await postJson(`${this.opts.server}${path}`, body, timeoutMs, this.abort.signal);
    const text = res.text;
    let doc: { error?: unknown } | undefined;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined;
    }
    if (res.status < 200 || res.status > 299) throw new ServerAnswerError(path, res.status, String(doc?.error ?? text.slice(0, 200)), res.retryAfterMs);
    return doc;
  }

  private async poll(): Promise<WireTask[]> {
    const waitMs = this.opts.waitMs ?? 25_000;
    const doc = (await this.post(TASKS_PATH, this.signed(POLL_DOMAIN, { waitMs }), waitMs + 30_000)) as { tasks?: unknown };
    if (!Array.isArray(doc?.tasks)) throw new Error(`${TASKS_PATH}: the answer holds no task list`);
    return doc.tasks as WireTask[];
  }

  /** Runs one task (once per id) and delivers its answer, retrying a lost delivery. */
  private async handle(t: WireTask): Promise<void> {
    if (typeof t?.id !== 'string') return;
    let answer = this.answered.get(t.id);
    if (!answer) {
      answer = await this.execute(t);
      this.answered.set(t.id, answer);
      // Bounded: the server hands out tasks it still holds, and forgets them within the hour.
      if (this.answered.size > 1_000) this.answered.delete(this.answered.keys().next().value as string);
      this.opts.log?.(`task ${t.id}: ${answer.ok ? `namespace ${String(answer.namespace)} on ${String(answer.disk)}` : `failed: ${String(answer.error)}`}`);
    }
    const attempts = this.opts.resultAttempts ?? 5;
    for (let i = 1; i <= attempts && !this.abort.signal.aborted; i++) {
      try {
        await this.post(TASK_RESULT_PATH, this.signed(RESULT_DOMAIN, { taskId: t.id, ...answer }), 30_000);
        return;
      } catch (e) {
        // The server refused the answer itself: sending it again cannot help.
        if (e instanceof ServerAnswerError && e.status < 500 && e.status !== 429) {
          this.opts.log?.(`task ${t.id}: the server refused the answer: ${e.message}`);
          return;
        }
        if (i < attempts) await this.sleep(Math.max(e instanceof ServerAnswerError ? e.retryAfterMs : 0, this.backoff(i)));
      }
    }
  }

  private async execute(t: WireTask): Promise<Record<string, unknown>> {
    if (t.kind !== 'namespace') return { ok: false, error: `this agent does not know tasks of kind ${String(t.kind).slice(0, 40)}` };
    const r = t.request;
    if (typeof r?.name !== 'string' || !NAME.test(r.name) || !Number.isSafeInteger(r.maxsize) || (r.mode !== 'user' && r.mode !== 'seq')) {
      return { ok: false, error: 'the task holds no valid namespace request (name, mode, maxsize)' };
    }
    try {
      const done = await provisionNamespace(t.id, r, this.opts.zdbs());
      return { ok: true, ...done };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }
}
