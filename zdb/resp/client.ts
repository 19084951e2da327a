// A small RESP2 client for 0-db (and any RESP server) over TCP or a unix
// socket: commands are written as they come (pipelining for free), replies
// are matched to them in order. Every command has a deadline; since a late
// reply would be taken for the next command's, a missed deadline or a
// malformed reply fails every pending command and closes the connection.
import net from 'node:net';
import { encodeCommand } from './encoder.ts';
import { DEFAULT_REPLY_LIMITS, ReplyParser, type ReplyLimits, type RespReply } from './client-reply.ts';
import { RespProtocolError } from './parser.ts';

export type { RespReply } from './client-reply.ts';

export type RespTarget = { host: string; port: number } | { path: string };

export interface RespClientOptions {
  /** how long connecting may take (default 10 s) */
  connectTimeoutMs?: number;
  /** how long each command may wait for its reply (default 10 s) */
  commandTimeoutMs?: number;
  limits?: ReplyLimits;
}

export function describeTarget(t: RespTarget): string {
  return 'path' in t ? t.path : `${t.host}:${t.port}`;
}

/** Connecting failed (refused, no such socket file, no route). */
export class RespConnectError extends Error {
  readonly code: string | undefined;
  constructor(target: RespTarget, cause: NodeJS.ErrnoException) {
    const hint = cause.code === 'ECONNREFUSED' || cause.code === 'ENOENT' ? ': is the server running and listening there?' : '';
    super(`cannot connect to ${describeTarget(target)} (${cause.code ?? cause.message})${hint}`);
    this.name = 'RespConnectError';
    this.code = cause.code;
  }
}

/** A connect or a command took longer than its deadline; the connection is closed. */
export class RespTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespTimeoutError';
  }
}

/** The connection ended (closed by either side) before the reply came. */
export class RespClosedError extends Error {
  constructor(target: RespTarget, detail: string) {
    super(`connection to ${describeTarget(target)} closed ${detail}`);
    this.name = 'RespClosedError';
  }
}

/** The server answered a helper's command (AUTH, SELECT, PING) with an error reply. */
export class RespServerError extends Error {
  readonly reply: string;
  constructor(command: string, reply: string) {
    super(`${command} refused by the server: ${reply}`);
    this.name = 'RespServerError';
    this.reply = reply;
  }
}

interface Pending {
  resolve(r: RespReply): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class RespClient {
  readonly target: RespTarget;
  private readonly socket: net.Socket;
  private readonly parser: ReplyParser;
  private readonly commandTimeoutMs: number;
  private readonly pending: Pending[] = [];
  // why the connection can no longer be used, once it cannot
  private failure: Error | undefined;

  private constructor(socket: net.Socket, target: RespTarget, opts: RespClientOptions) {
    this.socket = socket;
    this.target = target;
    this.parser = new ReplyParser(opts.limits ?? DEFAULT_REPLY_LIMITS);
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.fail(new RespClosedError(target, `by an error: ${e.message}`)));
    socket.on('close', () => this.fail(new RespClosedError(target, 'by the server')));
  }

  /** Connects to `target`; rejects with RespConnectError or RespTimeoutError. */
  static connect(target: RespTarget, opts: RespClientOptions = {}): Promise<RespClient> {
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RespTimeoutError(`no connection to ${describeTarget(target)} within ${timeoutMs} ms: is the server overloaded, or its listen backlog full?`));
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new RespConnectError(target, e));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RespClient(socket, target, opts));
      });
    });
  }

  /** True until the connection closed or failed. */
  get open(): boolean {
    return this.failure === undefined;
  }

  /** Commands sent and not yet answered. */
  get inFlight(): number {
    return this.pending.length;
  }

  /**
   * Sends one command and resolves with its reply (error replies included, as
   * values). Rejects with RespTimeoutError, RespClosedError or RespProtocolError.
   */
  command(args: (string | Buffer)[], opts: { timeoutMs?: number } = {}): Promise<RespReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (args.length === 0) return Promise.reject(new TypeError('a RESP command needs at least its name'));
    const name = String(args[0]).toUpperCase().slice(0, 32);
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new RespTimeoutError(`no reply to ${name} from ${describeTarget(this.target)} within ${timeoutMs} ms; the connection was closed (is the server stuck or overloaded?)`));
      }, timeoutMs);
      this.pending.push({ resolve, reject, timer });
      this.socket.write(encodeCommand(args));
    });
  }

  /** Sends all commands in one write and resolves with their replies, in order. */
  pipeline(commands: (string | Buffer)[][], opts: { timeoutMs?: number } = {}): Promise<RespReply[]> {
    this.socket.cork();
    const replies = commands.map((c) => this.command(c, opts));
    this.socket.uncork();
    return Promise.all(replies);
  }

  /** PING; resolves with the round trip in milliseconds (a health check). */
  async ping(opts: { timeoutMs?: number } = {}): Promise<number> {
    const start = performance.now();
    this.expect('PING', await this.command(['PING'], opts));
    return performance.now() - start;
  }

  /** AUTH with a plain password (0-db's --admin). */
  async auth(password: string): Promise<void> {
    this.expect('AUTH', await this.command(['AUTH', password]));
  }

  /** SELECT a namespace, with its password when it has one. */
  async select(namespace: string, password?: string): Promise<void> {
    this.expect(`SELECT ${namespace}`, await this.command(password === undefined ? ['SELECT', namespace] : ['SELECT', namespace, password]));
  }

  /** Closes the connection; commands still waiting reject with RespClosedError. */
  close(): void {
    this.fail(new RespClosedError(this.target, 'by the client'));
  }

  private expect(command: string, r: RespReply): void {
    if (r.type === 'error') throw new RespServerError(command, r.text);
    if (r.type !== 'simple') throw new RespProtocolError(`unexpected ${r.type} reply to ${command}`);
  }

  private onData(d: Buffer): void {
    let replies: RespReply[];
    try {
      replies = this.parser.feed(d);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    for (const r of replies) {
      const p = this.pending.shift();
      if (!p) {
        this.fail(new RespProtocolError(`a reply nobody asked for from ${describeTarget(this.target)}`));
        return;
      }
      clearTimeout(p.timer);
      p.resolve(r);
    }
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    this.socket.destroy();
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
  }
}
