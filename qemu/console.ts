// A VM's serial console: QEMU runs on a pseudo-terminal (node-pty) with its
// serial port on stdio; everything it prints goes to a log file and an
// in-memory buffer, cleaned of terminal escape sequences so markers can be
// matched as plain text. waitFor() resolves on a pattern or rejects with
// the end of the log, so a failed test shows what the machine was doing.
import { spawn as ptySpawn } from 'node-pty';
import type { IPty } from 'node-pty';
import { killPid } from '../lib/process.ts';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { cleanTerminalText } from '../lib/terminal-text.ts';

export { cleanTerminalText };

export class ConsoleTimeoutError extends Error {
  readonly tail: string;
  constructor(message: string, tail: string) {
    super(`${message}\n--- console tail ---\n${tail}`);
    this.tail = tail;
  }
}

export class ConsoleExitError extends ConsoleTimeoutError {}

export interface ConsoleOptions {
  /** File the cleaned console text is written to. */
  logPath: string;
  /** Names the console in errors (the VM name). */
  name?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Characters kept in memory; older text stays only in the file. */
  maxBuffer?: number;
}

export interface ConsoleExit {
  exitCode: number;
  signal?: number;
}

/** A pattern may match text that arrived up to this many characters before the newest chunk. */
const OVERLAP = 8192;
/** How long a regular-expression match that ends with the output so far waits for more characters. */
const SETTLE_MS = 1000;

interface Waiter {
  re: RegExp;
  from: number;
  checked: number;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  settleTimer?: NodeJS.Timeout;
  /** A regular expression may match more text once more arrives; a literal string cannot. */
  mayGrow: boolean;
  describe: string;
}

function toRegExp(pattern: string | RegExp): RegExp {
  if (typeof pattern !== 'string') return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

export class SerialConsole {
  readonly name: string;
  readonly path: string;
  readonly pid: number;
  /** Resolves when the process on the console has exited and its output is flushed. */
  readonly exited: Promise<ConsoleExit>;
  private readonly pty: IPty;
  private readonly file: WriteStream;
  private readonly maxBuffer: number;
  private buffer = '';
  /** Characters dropped from the front of the buffer. */
  private dropped = 0;
  private pending = '';
  private exit: ConsoleExit | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly lineListeners = new Set<(line: string) => void>();
  private readonly rawListeners = new Set<(raw: string) => void>();
  private partialLine = '';

  private constructor(file: string, args: string[], opts: ConsoleOptions) {
    this.name = opts.name ?? file;
    this.path = opts.logPath;
    this.maxBuffer = opts.maxBuffer ?? 8 * 1024 * 1024;
    this.file = createWriteStream(opts.logPath, { flags: 'w' });
    // A wide terminal so nothing on our side wraps lines.
    this.pty = ptySpawn(file, args, { name: 'xterm', cols: 250, rows: 50, cwd: opts.cwd ?? process.cwd(), env: opts.env ?? process.env });
    this.pid = this.pty.pid;
    this.pty.onData((d) => {
      for (const l of this.rawListeners) l(d);
      this.append(d);
    });
    this.exited = new Promise((resolve) => {
      this.pty.onExit((e) => {
        // node-pty can report the exit before the last output is read.
        setTimeout(() => {
          this.exit = { exitCode: e.exitCode, signal: e.signal || undefined };
          this.append('', true);
          for (const w of [...this.waiters]) this.check(w, true);
          for (const w of [...this.waiters]) this.settle(w, new ConsoleExitError(`${this.name}: exited (${this.describeExit()}) before the console showed ${w.describe}`, this.tail()));
          this.file.end(() => resolve(this.exit!));
        }, 100);
      });
    });
  }

  /** Starts `file args` on a new pseudo-terminal, logging to opts.logPath. */
  static spawn(file: string, args: string[], opts: ConsoleOptions): SerialConsole {
    return new SerialConsole(file, args, opts);
  }

  private describeExit(): string {
    if (!this.exit) return 'running';
    return this.exit.signal ? `signal ${this.exit.signal}` : `code ${this.exit.exitCode}`;
  }

  private append(raw: string, flush = false): void {
    const { text, rest } = cleanTerminalText(this.pending + raw);
    this.pending = flush ? '' : rest;
    if (text === '') return;
    this.file.write(text);
    this.buffer += text;
    if (this.buffer.length > this.maxBuffer) {
      const cut = this.buffer.length - this.maxBuffer;
      this.buffer = this.buffer.slice(cut);
      this.dropped += cut;
    }
    if (this.lineListeners.size > 0) {
      const lines = (this.partialLine + text).split('\n');
      this.partialLine = lines.pop() ?? '';
      for (const line of lines) for (const l of this.lineListeners) l(line);
    }
    for (const w of [...this.waiters]) this.check(w);
  }

  private check(w: Waiter, final = false): void {
    const end = this.dropped + this.buffer.length;
    const start = Math.max(w.from, w.checked - OVERLAP, this.dropped);
    const m = w.re.exec(this.buffer.slice(start - this.dropped));
    if (!m) {
      w.checked = end;
      return;
    }
    m.index += start;
    // A match that runs to the end of the text so far may grow with the next
    // chunk (`mac=(\S+)` seeing "mac=9"): wait for the end of the line, more
    // output or a quiet second before settling on it.
    if (!final && w.mayGrow && m.index + m[0].length === end && !this.buffer.endsWith('\n') && this.exit === undefined) {
      clearTimeout(w.settleTimer);
      w.settleTimer = setTimeout(() => this.check(w, true), SETTLE_MS);
      return;
    }
    this.settle(w, m);
  }

  private settle(w: Waiter, result: RegExpExecArray | Error): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    clearTimeout(w.settleTimer);
    if (result instanceof Error) w.reject(result);
    else w.resolve(result);
  }

  /** All text kept in memory (the whole console unless it outgrew maxBuffer). */
  log(): string {
    return this.buffer;
  }

  /** The last `chars` characters of the console. */
  tail(chars = 3000): string {
    return this.buffer.slice(-chars);
  }

  /** Position after everything seen so far; pass it as `from` to wait only for new output. */
  mark(): number {
    return this.dropped + this.buffer.length;
  }

  /**
   * Resolves with the first match of `pattern` (a string matches literally)
   * at or after `from` (default: the start of the console); rejects with the
   * console tail on timeout or when the process exits first.
   */
  waitFor(pattern: string | RegExp, timeoutMs: number, opts: { from?: number } = {}): Promise<RegExpExecArray> {
    const re = toRegExp(pattern);
    const describe = typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        re,
        from: opts.from ?? 0,
        checked: opts.from ?? 0,
        resolve,
        reject,
        describe,
        mayGrow: typeof pattern !== 'string',
        timer: setTimeout(() => this.settle(w, new ConsoleTimeoutError(`${this.name}: ${describe} not seen on the console within ${timeoutMs} ms`, this.tail())), timeoutMs),
      };
      this.waiters.add(w);
      this.check(w);
      if (this.waiters.has(w) && this.exit) this.settle(w, new ConsoleExitError(`${this.name}: exited (${this.describeExit()}) before the console showed ${describe}`, this.tail()));
    });
  }

  /** Calls `listener` with every complete console line from now on; returns the unsubscribe function. */
  onLine(listener: (line: string) => void): () => void {
    this.lineListeners.add(listener);
    return () => this.lineListeners.delete(listener);
  }

  /** Calls `listener` with the console's raw output (escape sequences kept, for a terminal emulator) from now on; returns the unsubscribe function. */
  onRaw(listener: (raw: string) => void): () => void {
    this.rawListeners.add(listener);
    return () => this.rawListeners.delete(listener);
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Types `text` on the console (the guest's serial input), e.g. a command for its shell. */
  write(text: string): void {
    if (this.exit) throw new ConsoleExitError(`${this.name}: exited (${this.describeExit()}); cannot type on its console`, this.tail());
    this.pty.write(text);
  }

  /** Sends a signal to the process on the console (by pid). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exit) return;
    killPid(this.pid, signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone and the log is flushed. */
  async stop(graceMs = 3000): Promise<ConsoleExit> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
