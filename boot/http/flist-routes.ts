// Flists for nodes on the node-facing port: GET/HEAD /flists/ (also
// /flists and /flists.json; JSON [{name, size, sha256, mtime}]),
// /flists/<name>.fl, and /chunks/<h[0:2]>/<h> or /chunks/<h> (what the
// http:// chunk store asks), so a node or `zeroboot flist unpack --store
// http://<server>/chunks` can use the server as a chunk store.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';
import { StoreNotFoundError, StorePathError } from '../store.ts';
import type { StoreEntry } from '../store.ts';
import type { ChunkStore } from '../../flist/stores/types.ts';
import { serveEntry } from './artifacts.ts';
import type { BufferBudget } from './artifacts.ts';
import { sendJson } from './api.ts';
import { sendText } from './route-context.ts';
import { FlistCatalog, judgeFlistName } from './flist-catalog.ts';
import { ChunkBusyError, ChunkSource, chunkHexFromPath } from './chunk-source.ts';
import type { ChunkSourceOptions } from './chunk-source.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';

/** What the server is given to offer flists: the folder of .fl files and the chunk store, opened (and closed) by its owner. */
export interface FlistOptions extends ChunkSourceOptions {
  dir: string;
  chunks: ChunkStore;
}

/** Chunks never change under their id: any cache may keep them for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

export class FlistRoutes {
  private readonly catalog: FlistCatalog;
  private readonly chunks: ChunkSource;
  private readonly log: Logger;
  private readonly buffers: BufferBudget;
  private readonly failures = new LogThrottle(FLOOD_LOG_EVERY_MS);
  private readonly sockets = new WeakMap<Socket, AbortSignal>();

  constructor(opts: FlistOptions, log: Logger, buffers: BufferBudget) {
    this.catalog = new FlistCatalog(opts.dir);
    this.chunks = new ChunkSource(opts.chunks, opts);
    this.log = log;
    this.buffers = buffers;
  }

  /** Whether `path` is one of these routes; they answer 404 when the server has no flists. */
  static owns(path: string): boolean {
    return path === '/flists' || path === '/flists.json' || path.startsWith('/flists/') || path === '/chunks' || path.startsWith('/chunks/');
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string, head: boolean): Promise<void> {
    if (path === '/flists' || path === '/flists/' || path === '/flists.json') return this.serveList(res, head);
    if (path.startsWith('/flists/')) return this.serveFlist(req, res, path.slice('/flists/'.length), head);
    return this.serveChunk(req, res, path.slice('/chunks/'.length), head);
  }

  private async serveList(res: ServerResponse, head: boolean): Promise<void> {
    let list;
    try {
      list = await this.catalog.list();
    } catch (e) {
      this.storeFailed('listing the flists folder failed', { dir: this.catalog.dir, error: reason(e) });
      return sendText(res, 503, 'the flists folder cannot be read; see the server log\n', head);
    }
    sendJson(res, 200, list, head);
  }

  private async serveFlist(req: IncomingMessage, res: ServerResponse, raw: string, head: boolean): Promise<void> {
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return sendText(res, 400, 'bad percent-encoding in the flist name\n', head);
    }
    // Raw or decoded, a separator is a way out of the folder: only names directly in it are served.
    const verdict = raw.includes('/') ? 'refused' : judgeFlistName(name);
    if (verdict === 'refused') return sendText(res, 400, 'flist name refused: only NAME.fl directly in the flists folder\n', head);
    if (verdict === 'absent') return sendText(res, 404, 'not found: flists are /flists/NAME.fl (the list is /flists/)\n', head);
    let entry: StoreEntry;
    try {
      entry = await this.catalog.open(name);
    } catch (e) {
      if (e instanceof StoreNotFoundError) return sendText(res, 404, `not found: /flists/${name}\n`, head);
      if (e instanceof StorePathError) return sendText(res, 400, 'flist name refused: it leads out of the flists folder\n', head);
      throw e;
    }
    await serveEntry(req, res, entry, this.buffers);
  }

  private async serveChunk(req: IncomingMessage, res: ServerResponse, rest: string, head: boolean): Promise<void> {
    const hex = chunkHexFromPath(rest);
    if (hex === undefined) return sendText(res, 400, 'malformed chunk id: /chunks/<h[0:2]>/<h> or /chunks/<h>, h 64 lowercase hex digits\n', head);
    // A client that leaves while its fetch waits for memory gives its place up.
    const gone = this.socketGone(req.socket);
    let entry: StoreEntry | undefined;
    try {
      entry = await this.chunks.open(hex, gone);
    } catch (e) {
      if (e instanceof ChunkBusyError) {
        res.setHeader('Retry-After', '1');
        return sendText(res, 503, 'busy: too many chunks in flight; retry\n', head);
      }
      this.storeFailed('chunk store failed', { store: this.chunks.store.url, chunk: hex, error: reason(e) });
      return sendText(res, 502, `the chunk store failed on ${hex}; see the server log\n`, head);
    }
    if (gone.aborted) {
      await entry?.close();
      return;
    }
    if (entry === undefined) return sendText(res, 404, `chunk ${hex} not found\n`, head);
    res.setHeader('Cache-Control', IMMUTABLE);
    await serveEntry(req, res, entry, this.buffers);
  }

  /** Aborted when the connection closes; one listener per connection however many requests it pipelines. */
  private socketGone(socket: Socket): AbortSignal {
    let gone = this.sockets.get(socket);
    if (!gone) {
      const controller = new AbortController();
      if (socket.destroyed) controller.abort();
      else socket.once('close', () => controller.abort());
      gone = controller.signal;
      this.sockets.set(socket, gone);
    }
    return gone;
  }

  /** One warn line per failure, but no more than one per FLOOD_LOG_EVERY_MS: a store down under a crowd of nodes must not flood the log. */
  private storeFailed(message: string, fields: Record<string, unknown>): void {
    const failures = this.failures.note();
    if (failures !== undefined) this.log.warn(message, { ...fields, failures });
  }
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
