// Held polls: a node asks for its tasks and, when it has none, the answer
// waits until one is created or the hold time passes. Only verified nodes
// get here, and each holds at most one poll (a new poll answers the older
// one, empty: it is the same agent after a restart or a lost connection).
// The node network is hostile, so holds are bounded per client address (one
// host with many self-made identities) and in all.
import { Refusal } from './refusal.ts';
import type { Task, TaskBoard } from './tasks.ts';

export interface PollLimits {
  /** Polls held at once, all nodes together. */
  maxHeld: number;
  /** Polls held at once from one client address. */
  maxPerAddress: number;
  /** How long a poll with nothing to do is held (below the node port's idle timeout). */
  holdMs: number;
  /** Tasks handed out per answer. */
  batch: number;
}

export const DEFAULT_POLL_LIMITS: PollLimits = { maxHeld: 1024, maxPerAddress: 4, holdMs: 25_000, batch: 8 };

interface Hold {
  nodeId: string;
  address: string;
  answer: (tasks: Task[]) => void;
  timer: NodeJS.Timeout;
}

export class PollHolds {
  private readonly byNode = new Map<string, Hold>();
  private readonly perAddress = new Map<string, number>();
  private readonly board: TaskBoard;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;
  readonly limits: PollLimits;

  constructor(board: TaskBoard, limits: Partial<PollLimits> = {}, now: () => number = Date.now) {
    this.board = board;
    this.limits = { ...DEFAULT_POLL_LIMITS, ...limits };
    this.now = now;
    this.unsubscribe = board.subscribe((t) => {
      const h = t.state === 'pending' ? this.byNode.get(t.nodeId) : undefined;
      if (h) this.end(h, this.board.deliver(t.nodeId, this.limits.batch, this.now()));
    });
  }

  get held(): number {
    return this.byNode.size;
  }

  /** Throws a Refusal when `address` holds its most polls already: checked before a body is read and verified. */
  checkAddress(address: string): void {
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.limits.maxPerAddress) throw new Refusal(429, `${address} holds ${n} polls already (the most one address may)`);
  }

  /**
   * Answers `nodeId`'s poll (answer is called once): at once with its
   * pending tasks, else when one comes or after `waitMs` (at most holdMs)
   * with none. Returns a cancel for a connection that closed first.
   */
  poll(nodeId: string, address: string, waitMs: number, answer: (tasks: Task[]) => void): () => void {
    const older = this.byNode.get(nodeId);
    if (older) this.end(older, []);
    const ready = this.board.deliver(nodeId, this.limits.batch, this.now());
    if (ready.length > 0 || waitMs <= 0) {
      answer(ready);
      return () => undefined;
    }
    this.checkAddress(address);
    if (this.byNode.size >= this.limits.maxHeld) throw new Refusal(503, `the server holds ${this.byNode.size} polls (the most it may); retry later`);
    const hold: Hold = { nodeId, address, answer, timer: setTimeout(() => this.end(hold, []), Math.min(waitMs, this.limits.holdMs)) };
    this.byNode.set(nodeId, hold);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    return () => this.release(hold);
  }

  /** Answers every held poll, empty, and stops listening to the board. */
  close(): void {
    for (const h of [...this.byNode.values()]) this.end(h, []);
    this.unsubscribe();
  }

  private end(h: Hold, tasks: Task[]): void {
    if (!this.release(h)) return;
    h.answer(tasks);
  }

  private release(h: Hold): boolean {
    if (this.byNode.get(h.nodeId) !== h) return false;
    clearTimeout(h.timer);
    this.byNode.delete(h.nodeId);
    const n = (this.perAddress.get(h.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(h.address, n);
    else this.perAddress.delete(h.address);
    return true;
  }
}
