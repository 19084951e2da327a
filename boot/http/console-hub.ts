// Serial consoles of rig VMs, held by the server for the dashboard. A
// publisher (the QEMU rig, in whatever process runs it) connects to a unix
// socket in the state directory, says which VM it carries in one JSON line
// ({"name": ..., "macs": [...]}), is answered "ok" (or "error: <why>" and
// closed), and then streams the console's raw output; what the server sends
// back after "ok" is typed on the console.
// Bounded: each VM keeps at most `scrollbackBytes` of output, at most
// `maxSessions` VMs are held (the oldest ended one makes room), and a
// publisher that does not say who it is within a few seconds is dropped.
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from '../log.ts';
import { normalizeMac } from '../../lib/mac.ts';
import { cleanTerminalText } from '../../lib/terminal-text.ts';

/** The socket file in the state directory that publishers connect to. */
export const CONSOLE_SOCKET = 'consoles.sock';
const MAX_HELLO_BYTES = 4096;
const HELLO_TIMEOUT_MS = 5_000;
/** Console lines kept as text for the "why" panel, and their longest length. */
const TAIL_LINES = 40;
const TAIL_LINE_CHARS = 300;

export class ConsoleHelloError extends Error {}

export interface ConsoleHello {
  name: string;
  macs: string[];
}

/** Checks a publisher's first line: a VM name and the MACs of its NICs. */
export function parseHello(line: string): ConsoleHello {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    throw new ConsoleHelloError('the first line must be JSON: {"name": "<vm>", "macs": ["<mac>", ...]}');
  }
  const d = doc as { name?: unknown; macs?: unknown };
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(d.name)) throw new ConsoleHelloError('name must be 1-64 characters of A-Z a-z 0-9 . _ -');
  if (!Array.isArray(d.macs) || d.macs.length > 16) throw new ConsoleHelloError('macs must be a list of at most 16 MAC addresses');
  const macs = d.macs.map((m) => (typeof m === 'string' ? normalizeMac(m) : undefined));
  if (macs.some((m) => m === undefined)) throw new ConsoleHelloError('macs must hold MAC addresses (aa:bb:cc:dd:ee:ff)');
  return { name: d.name, macs: macs as string[] };
}

export interface ConsoleListener {
  data(chunk: Buffer): void;
  end(): void;
}

/** One VM's console: bounded scrollback, the last lines as text, live listeners and the way back to its input. */
export class ConsoleSession {
  readonly name: string;
  macs: string[];
  private readonly maxBytes: number;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private readonly listeners = new Set<ConsoleListener>();
  private readonly decoder = new StringDecoder('utf8');
  private pendingText = '';
  private partialLine = '';
  private lines: string[] = [];
  private input: ((data: Buffer) => void) | undefined;
  /** When output last arrived or the publisher went (ms), to pick the oldest ended session. */
  lastActive = Date.now();

  constructor(hello: ConsoleHello, maxBytes: number) {
    this.name = hello.name;
    this.macs = hello.macs;
    this.maxBytes = maxBytes;
  }

  get live(): boolean {
    return this.input !== undefined;
  }

  get scrollbackBytes(): number {
    return this.bytes;
  }

  attach(input: (data: Buffer) => void): void {
    this.input = input;
    this.lastActive = Date.now();
  }

  detach(): void {
    this.input = undefined;
    this.lastActive = Date.now();
    for (const l of this.listeners) l.end();
    this.listeners.clear();
  }

  append(chunk: Buffer): void {
    this.lastActive = Date.now();
    if (chunk.length >= this.maxBytes) {
      this.chunks = [chunk.subarray(chunk.length - this.maxBytes)];
      this.bytes = this.maxBytes;
    } else {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      while (this.bytes > this.maxBytes) {
        const first = this.chunks[0];
        const over = this.bytes - this.maxBytes;
        if (first.length <= over) {
          this.chunks.shift();
          this.bytes -= first.length;
        } else {
          this.chunks[0] = first.subarray(over);
          this.bytes -= over;
        }
      }
    }
    this.addText(this.decoder.write(chunk));
    for (const l of this.listeners) l.data(chunk);
  }

  private addText(raw: string): void {
    const { text, rest } = cleanTerminalText(this.pendingText + raw);
    this.pendingText = rest.length > 256 ? '' : rest;
    const parts = (this.partialLine + text).split('\n');
    this.partialLine = parts.pop()!.slice(-TAIL_LINE_CHARS);
    for (const line of parts) if (line.trim() !== '') this.lines.push(line.slice(0, TAIL_LINE_CHARS));
    if (this.lines.length > TAIL_LINES) this.lines = this.lines.slice(-TAIL_LINES);
  }

  /** The last `n` non-empty console lines as plain text (the line being written included). */
  tail(n = 20): string[] {
    const all = this.partialLine.trim() !== '' ? [...this.lines, this.partialLine] : this.lines;
    return all.slice(-n);
  }

  /** The scrollback, then every new chunk until the publisher goes; returns the unsubscribe function. */
  subscribe(l: ConsoleListener): { scrollback: Buffer; unsubscribe: () => void } {
    this.listeners.add(l);
    return { scrollback: Buffer.concat(this.chunks), unsubscribe: () => this.listeners.delete(l) };
  }

  /** Types on the console; false when its publisher is gone. */
  write(data: Buffer): boolean {
    if (!this.input) return false;
    this.input(data);
    return true;
  }
}

export interface ConsoleHubOptions {
  scrollbackBytes: number;
  maxSessions: number;
  log: Logger;
}

export class ConsoleHub {
  private readonly opts: ConsoleHubOptions;
  private readonly sessions = new Map<string, ConsoleSession>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(opts: ConsoleHubOptions) {
    this.opts = opts;
  }

  list(): ConsoleSession[] {
    return [...this.sessions.values()];
  }

  get(name: string): ConsoleSession | undefined {
    return this.sessions.get(name);
  }

  /** The console of the VM with this MAC on one of its NICs (the most recently active one). */
  byMac(mac: string): ConsoleSession | undefined {
    let best: ConsoleSession | undefined;
    for (const s of this.sessions.values()) if (s.macs.includes(mac) && (!best || s.lastActive > best.lastActive)) best = s;
    return best;
  }

  /** A publisher announced `hello`: its session (the same VM again keeps its scrollback), or an error when the hub is full. */
  open(hello: ConsoleHello): ConsoleSession {
    let s = this.sessions.get(hello.name);
    if (s) {
      if (s.live) throw new ConsoleHelloError(`${hello.name} already has a publisher`);
      s.macs = hello.macs;
      return s;
    }
    if (this.sessions.size >= this.opts.maxSessions) {
      const ended = [...this.sessions.values()].filter((x) => !x.live).sort((a, b) => a.lastActive - b.lastActive)[0];
      if (!ended) throw new ConsoleHelloError(`the server holds ${this.opts.maxSessions} live consoles already`);
      this.sessions.delete(ended.name);
    }
    s = new ConsoleSession(hello, this.opts.scrollbackBytes);
    this.sessions.set(hello.name, s);
    return s;
  }

  /** Listens for publishers on `file` (a stale socket file from an earlier run is replaced), mode 0600. */
  async listen(file: string): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const st = await lstat(file).catch(() => undefined);
    if (st?.isSocket()) await unlink(file);
    const server = createServer((socket) => this.accept(socket));
    // Every session's publisher, and as many again still saying hello.
    server.maxConnections = this.opts.maxSessions * 2;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => resolve());
    });
    await chmod(file, 0o600);
    server.on('error', (e) => this.opts.log.error('console socket error', { error: e.message }));
    this.server = server;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    const refuse = (why: string) => {
      clearTimeout(timer);
      socket.end(`error: ${why}\n`);
      this.opts.log.warn('console publisher refused', { reason: why });
    };
    const onHead = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > MAX_HELLO_BYTES) {
          socket.off('data', onHead);
          refuse(`no hello line within ${MAX_HELLO_BYTES} bytes`);
        }
        return;
      }
      socket.off('data', onHead);
      clearTimeout(timer);
      let session: ConsoleSession;
      try {
        session = this.open(parseHello(head.subarray(0, nl).toString('utf8')));
      } catch (e) {
        if (e instanceof ConsoleHelloError) return refuse(e.message);
        throw e;
      }
      socket.write('ok\n');
      session.attach((data) => socket.write(data));
      socket.on('close', () => session.detach());
      socket.on('data', (chunk: Buffer) => session.append(chunk));
      const rest = head.subarray(nl + 1);
      if (rest.length > 0) session.append(rest);
      this.opts.log.info('console attached', { vm: session.name, macs: session.macs.join(',') });
    };
    socket.on('data', onHead);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const s of this.sessions.values()) s.detach();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
