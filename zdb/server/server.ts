// The network side: TCP and unix socket listeners, one parser per
// connection, replies of a batch written in one go, group commit with
// --sync (every acknowledgement waits for the fsync that covers it), WAIT
// watchers. Malformed input costs only the client that sent it.
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import type { Engine } from '../engine/index.ts';
import { RespProtocolError } from '../resp/parser.ts';
import { error, simple } from '../resp/encoder.ts';
import { Client } from './client.ts';
import type { ServerContext, ServerStats } from './context.ts';
import { DEFAULT_NAMESPACE } from './context.ts';
import { dispatch } from './commands.ts';
import { SharedReadBuffer } from './socket-reads.ts';
import type { HookRunner } from './hooks.ts';
import type { ZdbLog } from './log.ts';
import type { ZdbOptions } from './options.ts';

// Replies up to this size are joined into one buffer; bigger batches go out with writev.
const JOIN_LIMIT = 64 * 1024;
// A batch stops once its replies pass this size; the rest of the pipeline
// waits until they are out, so a chunk of small GETs of big values cannot
// pile up gigabytes of replies.
const BATCH_REPLY_LIMIT = 1024 * 1024;

export interface ZdbServerDeps {
  engine: Engine;
  opts: ZdbOptions;
  log: ZdbLog;
  hooks: HookRunner;
}

export class ZdbServer implements ServerContext {
  readonly engine: Engine;
  readonly opts: ZdbOptions;
  readonly log: ZdbLog;
  readonly hooks: HookRunner;
  readonly instanceId = randomInt(0, 0xffffffff);
  readonly stats: ServerStats = {
    bootTime: Math.floor(Date.now() / 1000),
    clients: 0,
    commandsValid: 0,
    commandsFailed: 0,
    adminFailed: 0,
    networkRx: 0,
    networkTx: 0,
  };
  private readonly connected = new Set<Client>();
  private readonly watchers = new Set<Client>();
  private readonly listeners: net.Server[] = [];
  private readonly reads = new SharedReadBuffer();
  private nextId = 0;
  private syncQueue = new Set<Client>();
  private pendingAcks = new Set<Client>();
  private acksScheduled = false;
  private syncing = false;
  private closed = false;

  constructor(deps: ZdbServerDeps) {
    this.engine = deps.engine;
    this.opts = deps.opts;
    this.log = deps.log;
    this.hooks = deps.hooks;
  }

  /** Opens the unix socket (if any) then TCP (if any); resolves once both accept connections. */
  async listen(): Promise<void> {
    if (this.opts.socket) {
      const path = this.opts.socket;
      try {
        unlinkSync(path);
      } catch {
        // nothing stale to remove
      }
      await this.open({ path }, `unix://${path}`);
    }
    if (this.opts.listen !== undefined) {
      await this.open({ host: this.opts.listen, port: this.opts.port, ipv6Only: false }, `tcp://${this.opts.listen}:${this.opts.port}`);
    }
  }

  /** The TCP port actually bound (useful with --port 0). */
  tcpPort(): number | undefined {
    for (const l of this.listeners) {
      const a = l.address();
      if (a && typeof a === 'object') return a.port;
    }
    return undefined;
  }

  private open(where: net.ListenOptions, label: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer({ noDelay: true, keepAlive: true }, (s) => this.accept(s));
      srv.on('error', (e) => this.log.warn(`[-] ${label}: ${e.message}`));
      srv.once('error', reject);
      srv.listen({ ...where, backlog: 511 }, () => {
        srv.removeListener('error', reject);
        this.listeners.push(srv);
        this.log.info(`[+] listening on ${label}`);
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const def = this.engine.get(DEFAULT_NAMESPACE);
    if (!def) {
      socket.destroy();
      return;
    }
    // --protect: the default namespace is read-only until SELECTed with the admin password
    const c = new Client(++this.nextId, socket, def, !this.opts.protect, this.opts.admin === undefined);
    this.connected.add(c);
    this.stats.clients++;
    this.log.verbose(`[+] incoming connection (client ${c.id})`);
    this.reads.attach(socket, (chunk) => this.receive(c, chunk));
    socket.on('error', (e) => this.log.verbose(`[-] client ${c.id}: ${e.message}`));
    socket.on('close', () => this.drop(c));
  }

  private receive(c: Client, chunk: Buffer): void {
    this.stats.networkRx += chunk.length;
    this.process(c, chunk);
  }

  private process(c: Client, chunk: Buffer): void {
    if (c.closing) return;
    let stopped = false;
    try {
      c.parser.feed(chunk, (args) => {
        try {
          dispatch(this, c, args);
        } catch (e) {
          this.log.warn(`[-] client ${c.id}: ${(e as Error).stack ?? e}`);
          c.out.push(error('Internal Error'));
        }
        if (c.closing) return false;
        if (c.out.length >= BATCH_REPLY_LIMIT) stopped = true;
        return !stopped;
      });
    } catch (e) {
      if (!(e instanceof RespProtocolError)) throw e;
      this.log.verbose(`[-] client ${c.id}: ${e.reply}, disconnecting`);
      c.out.push(error(e.reply));
      c.closing = true;
    }
    this.finish(c);
    if (stopped && !c.closing) this.continueLater(c);
  }

  /** A batch stopped at BATCH_REPLY_LIMIT: reading pauses until its replies are sent and drained. */
  private continueLater(c: Client): void {
    const s = c.socket;
    s.pause();
    const again = (): void => {
      if (s.destroyed || c.closing) return;
      // acknowledgements still waiting for the flush (next check phase) or an fsync
      if (this.pendingAcks.has(c)) return void setImmediate(again);
      if (c.held.length > 0 || this.syncQueue.has(c)) return void setTimeout(again, 1);
      if (s.writableNeedDrain) return void s.once('drain', again);
      const rest = c.parser.takeRest();
      s.resume();
      if (rest) this.process(c, rest);
    };
    setImmediate(again);
  }

  /**
   * End of a batch: send its replies now, or once its writes are out. Writes
   * of every client served in this turn of the event loop go to the files
   * together (one write per file), then their acknowledgements; with --sync
   * they wait for the fsync that covers them.
   */
  private finish(c: Client): void {
    if (this.opts.sync && (c.wrote || c.held.length > 0)) {
      c.wrote = false;
      c.held.push(...c.out.take());
      this.syncQueue.add(c);
      if (!this.syncing) this.startSync();
      return;
    }
    if (c.wrote || this.pendingAcks.has(c)) {
      c.wrote = false;
      this.pendingAcks.add(c);
      if (!this.acksScheduled) {
        this.acksScheduled = true;
        setImmediate(() => this.releaseAcks());
      }
      return;
    }
    this.send(c);
    if (c.closing) c.socket.end();
  }

  private releaseAcks(): void {
    this.acksScheduled = false;
    const batch = this.pendingAcks;
    this.pendingAcks = new Set();
    try {
      this.engine.flush();
    } catch (e) {
      // nothing is acknowledged that may not have reached the files
      this.log.warn(`[-] write failed: ${(e as Error).message}; dropping ${batch.size} client(s) unacknowledged`);
      for (const c of batch) {
        c.out.take();
        c.socket.destroy();
      }
      return;
    }
    for (const c of batch) {
      this.send(c);
      if (c.closing) c.socket.end();
    }
  }

  private startSync(): void {
    const batch = this.syncQueue;
    this.syncQueue = new Set();
    this.syncing = true;
    for (const c of batch) c.syncMark = c.held.length;
    this.engine.sync().then(
      () => {
        for (const c of batch) {
          const ready = c.held.splice(0, c.syncMark);
          c.syncMark = 0;
          if (c.socket.destroyed) continue;
          this.write(c, ready);
          if (c.closing && c.held.length === 0) c.socket.end();
        }
        this.syncDone();
      },
      (e: unknown) => {
        // writes that may not be on disk are never acknowledged: those clients are dropped
        this.log.warn(`[-] sync failed: ${(e as Error).message}`);
        for (const c of batch) {
          c.held = [];
          c.syncMark = 0;
          c.socket.destroy();
        }
        this.syncDone();
      },
    );
  }

  private syncDone(): void {
    this.syncing = false;
    if (this.syncQueue.size > 0) this.startSync();
  }

  /** Sends the replies in c.out. */
  private send(c: Client): void {
    if (c.out.empty) return;
    const text = c.out.takeText();
    if (text === undefined) return this.write(c, c.out.take());
    if (c.socket.destroyed) return;
    this.stats.networkTx += text.length;
    this.backpressure(c.socket, c.socket.write(text, 'latin1'));
  }

  private write(c: Client, parts: Buffer[]): void {
    if (parts.length === 0 || c.socket.destroyed) return;
    let size = 0;
    for (const p of parts) size += p.length;
    this.stats.networkTx += size;
    const s = c.socket;
    let ok: boolean;
    if (parts.length === 1) ok = s.write(parts[0]);
    else if (size <= JOIN_LIMIT) ok = s.write(Buffer.concat(parts, size));
    else {
      s.cork();
      for (const p of parts) s.write(p);
      s.uncork();
      ok = !s.writableNeedDrain;
    }
    this.backpressure(s, ok);
  }

  /** A client that does not read its replies stops being read until it does. */
  private backpressure(s: net.Socket, ok: boolean): void {
    if (!ok && !s.isPaused()) {
      s.pause();
      s.once('drain', () => s.resume());
    }
  }

  private drop(c: Client): void {
    this.connected.delete(c);
    this.unwatch(c);
    this.syncQueue.delete(c);
    this.pendingAcks.delete(c);
    this.log.verbose(`[+] client ${c.id}: closed after ${c.commands} commands`);
  }

  clients(): Iterable<Client> {
    return this.connected;
  }

  detachNamespace(name: string): void {
    for (const c of this.connected) if (c.ns?.name === name) c.ns = undefined;
  }

  watch(c: Client, command: string, timeoutMs: number): void {
    this.unwatch(c);
    const timer = setTimeout(() => {
      this.unwatch(c);
      c.out.push(error('Timeout'));
      this.finish(c);
    }, timeoutMs);
    c.watching = { command, timer };
    this.watchers.add(c);
  }

  private unwatch(c: Client): void {
    if (!c.watching) return;
    clearTimeout(c.watching.timer);
    c.watching = undefined;
    this.watchers.delete(c);
  }

  executed(c: Client, command: string): void {
    if (this.watchers.size === 0) return;
    const ns = c.ns?.name;
    for (const w of this.watchers) {
      if (w === c || !w.watching || w.ns?.name !== ns) continue;
      if (w.watching.command !== command && w.watching.command !== '*') continue;
      this.unwatch(w);
      w.out.push(simple(command));
      this.finish(w);
    }
  }

  /** Stops accepting, closes every connection. The engine is the caller's to close. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.watchers]) this.unwatch(w);
    const done = this.listeners.map((l) => new Promise<void>((r) => l.close(() => r())));
    for (const c of this.connected) c.socket.destroy();
    await Promise.all(done);
    if (this.opts.socket) {
      try {
        unlinkSync(this.opts.socket);
      } catch {
        // already gone
      }
    }
  }
}
