// The boot storm's HTTP client: what iPXE does (HTTP/1.1, keep-alive, one
// request at a time per connection), at the lowest CPU cost Node allows, so
// that the load generator, not the server, is never what sets the pace.
// Node's http client cost the generator about 5 µs per KiB of body (its
// parser and a fresh Buffer per read); here every socket reads into one
// shared buffer (net's `onread`) and a body is only counted unless its text
// is wanted. Content-Length, chunked and close-delimited bodies are read.
import { connect, type Socket } from 'node:net';

/** One buffer for every socket's reads: a read is handled before the next one lands in it. */
const READ_BUFFER = Buffer.allocUnsafe(256 << 10);
const MAX_HEAD = 16 << 10;

export class StormHttpError extends Error {}

export interface Answer {
  status: number;
  /** The body's bytes. */
  bytes: number;
  /** The body as text, when asked for. */
  text?: string;
}

interface Pending {
  keepText: boolean;
  resolve: (a: Answer) => void;
  reject: (e: Error) => void;
  /** Whether any byte of the answer came. */
  started: boolean;
}

type BodyState = { kind: 'length'; left: number } | { kind: 'chunked'; left: number; phase: 'size' | 'data' | 'crlf' | 'trailer'; line: string } | { kind: 'close' };

/** One keep-alive connection: requests go one after the other. */
class Connection {
  readonly socket: Socket;
  private pending: Pending | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;
  private body: BodyState | undefined;
  private status = 0;
  private bytes = 0;
  private text: Buffer[] = [];
  private keepAlive = true;
  closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly idleMs: number;

  constructor(host: string, port: number, localAddress: string, idleMs: number) {
    this.idleMs = idleMs;
    this.socket = connect({ host, port, localAddress, noDelay: true, onread: { buffer: READ_BUFFER, callback: (n) => (this.onData(READ_BUFFER.subarray(0, n)), true) } });
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => {
      this.closed = true;
      if (this.pending && this.body?.kind === 'close') this.finish();
      else this.fail(new StormHttpError('connection closed before the answer ended'));
    });
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Sends one request; resolves with the answer. */
  send(request: Buffer, keepText: boolean): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.pending = { keepText, resolve, reject, started: false };
      this.head = [];
      this.headBytes = 0;
      this.body = undefined;
      this.bytes = 0;
      this.text = [];
      this.arm();
      this.socket.write(request);
    });
  }

  destroy(): void {
    clearTimeout(this.timer);
    this.closed = true;
    this.socket.destroy();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail(new StormHttpError(`no progress for ${this.idleMs / 1000} s`)), this.idleMs);
  }

  private fail(e: Error): void {
    clearTimeout(this.timer);
    const p = this.pending;
    this.pending = undefined;
    this.closed = true;
    this.socket.destroy();
    if (p) p.reject(Object.assign(e, { beforeAnswer: !p.started }));
  }

  private finish(): void {
    clearTimeout(this.timer);
    const p = this.pending!;
    this.pending = undefined;
    if (!this.keepAlive) this.destroy();
    p.resolve({ status: this.status, bytes: this.bytes, ...(p.keepText ? { text: Buffer.concat(this.text).toString() } : {}) });
  }

  private onData(data: Buffer): void {
    const p = this.pending;
    if (!p) return; // nothing asked: an answer nobody waits for is dropped with the connection
    p.started = true;
    this.arm();
    let rest = data;
    if (!this.body) {
      rest = this.readHead(rest);
      if (!this.body) return;
    }
    this.readBody(rest);
  }

  /** Gathers the status line and headers; returns what follows them. */
  private readHead(data: Buffer): Buffer {
    this.head.push(Buffer.from(data));
    this.headBytes += data.length;
    const all = Buffer.concat(this.head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD) this.fail(new StormHttpError('headers over 16 KiB'));
      return Buffer.alloc(0);
    }
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.(\d) (\d{3})/.exec(lines[0]);
    if (!m) {
      this.fail(new StormHttpError(`not an HTTP answer: ${lines[0].slice(0, 80)}`));
      return Buffer.alloc(0);
    }
    this.status = Number(m[2]);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    const connection = (headers.get('connection') ?? '').toLowerCase();
    this.keepAlive = m[1] === '1' ? connection !== 'close' : connection === 'keep-alive';
    if ((headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) this.body = { kind: 'chunked', left: 0, phase: 'size', line: '' };
    else if (headers.has('content-length')) this.body = { kind: 'length', left: Number(headers.get('content-length')) };
    else if (this.status === 204 || this.status === 304) this.body = { kind: 'length', left: 0 };
    else {
      this.body = { kind: 'close' };
      this.keepAlive = false;
    }
    return all.subarray(end + 4);
  }

  private take(data: Buffer): void {
    this.bytes += data.length;
    if (this.pending?.keepText) this.text.push(Buffer.from(data));
  }

  private readBody(data: Buffer): void {
    const b = this.body!;
    if (b.kind === 'close') return this.take(data);
    if (b.kind === 'length') {
      const n = Math.min(b.left, data.length);
      this.take(data.subarray(0, n));
      b.left -= n;
      if (b.left === 0) this.finish();
      return;
    }
    let i = 0;
    while (i < data.length && this.pending) {
      if (b.phase === 'data') {
        const n = Math.min(b.left, data.length - i);
        this.take(data.subarray(i, i + n));
        b.left -= n;
        i += n;
        if (b.left === 0) b.phase = 'crlf';
        continue;
      }
      const nl = data.indexOf(10, i);
      const part = data.subarray(i, nl < 0 ? data.length : nl + 1).toString('latin1');
      i = nl < 0 ? data.length : nl + 1;
      b.line += part;
      if (nl < 0) continue;
      const line = b.line.trim();
      b.line = '';
      if (b.phase === 'crlf') b.phase = 'size';
      else if (b.phase === 'size') {
        const size = parseInt(line.split(';')[0], 16);
        if (!Number.isFinite(size)) return this.fail(new StormHttpError(`bad chunk size: ${line.slice(0, 40)}`));
        if (size === 0) b.phase = 'trailer';
        else (b.left = size), (b.phase = 'data');
      } else if (line === '') return this.finish();
    }
  }
}

/**
 * The connections of one machine to one server: at most `max` at once, kept
 * alive between requests, as iPXE (and `flist unpack`'s parallel chunk
 * fetches) keep theirs.
 */
export class StormHttpClient {
  private readonly idle: Connection[] = [];
  private open = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly opts: { localAddress: string; max: number; idleMs: number };

  constructor(opts: { localAddress: string; max: number; idleMs: number }) {
    this.opts = opts;
  }

  /** GET (or POST `body`); a reused connection that the server had closed is replaced once, at once. */
  async request(url: string, keepText: boolean, body?: string): Promise<Answer> {
    const u = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(body);
    const head =
      `${payload ? 'POST' : 'GET'} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: iPXE/1.21.1\r\n` +
      (payload ? `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n` : '') +
      '\r\n';
    const request = payload ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1');
    for (let fresh = false; ; fresh = true) {
      const c = await this.acquire(u.hostname, Number(u.port || 80), fresh);
      const reused = !fresh && c.reused;
      try {
        const a = await c.conn.send(request, keepText);
        this.release(c.conn);
        return a;
      } catch (e) {
        this.release(c.conn);
        if (reused && (e as { beforeAnswer?: boolean }).beforeAnswer) continue;
        throw e;
      }
    }
  }

  destroy(): void {
    for (const c of this.idle) c.destroy();
    this.idle.length = 0;
  }

  private async acquire(host: string, port: number, fresh: boolean): Promise<{ conn: Connection; reused: boolean }> {
    for (;;) {
      while (!fresh && this.idle.length) {
        const c = this.idle.pop()!;
        if (!c.closed) return { conn: c, reused: true };
        this.open--;
      }
      if (this.open < this.opts.max) {
        this.open++;
        return { conn: new Connection(host, port, this.opts.localAddress, this.opts.idleMs), reused: false };
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private release(c: Connection): void {
    if (c.closed || c.busy) {
      this.open--;
      c.destroy();
    } else this.idle.push(c);
    this.waiters.shift()?.();
  }
}
