// The node-facing HTTP side of the boot server (node:http): the listener, its
// timeouts and connection limits, and the context the routes (routes.ts)
// share. A request can fail; the server never does.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import type { ImageStore } from '../store.ts';
import type { Selector } from '../selection.ts';
import type { BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';
import { checkBase } from '../../lib/ipxe-script.ts';
import { bufferBudget, LARGE_BUFFER_BUDGET } from './artifacts.ts';
import { sendJson } from './api.ts';
import { MachineLabels } from '../machine-labels.ts';
import { closeNow, listenOn, splitUrl } from './listen.ts';
import { DEFAULT_LIMITS, limitConnections } from './connection-limits.ts';
import type { ConnectionLimits } from './connection-limits.ts';
import { FlistRoutes } from './flist-routes.ts';
import type { FlistOptions } from './flist-routes.ts';
import { route } from './routes.ts';
import { BootstrapRoutes } from './bootstrap-routes.ts';
import type { BootstrapOptions } from './bootstrap-routes.ts';
import { reportRequestHandler } from '../registry/http.ts';
import type { HttpMetrics } from '../metrics/index.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import type { PollHolds } from '../registry/long-poll.ts';
import type { TaskBoard } from '../registry/tasks.ts';
import { RememberedSelections, sendText } from './route-context.ts';
import { FileSender } from './sendfile.ts';
import { OpenFileCache } from '../open-file-cache.ts';
import type { RouteContext } from './route-context.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';

export interface HttpTimeouts {
  /** Time allowed to receive the request headers (slowloris guard). */
  headersMs: number;
  /** Time allowed to receive the whole request. */
  requestMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveMs: number;
  /** A connection with no traffic either way for this long is closed (stalled readers). */
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, idleMs: 60_000 };

export interface HttpServerOptions {
  store: ImageStore;
  selector: Selector;
  timeline: BootTimeline;
  log: Logger;
  host: string;
  /** 0 picks an ephemeral port. */
  port: number;
  /** Base URL clients use; default http://<host>:<port> (or the request's Host when bound to a wildcard address). */
  publicUrl?: string;
  /** Labels learned per MAC, shared with DHCP and TFTP/GRUB: the script request adds what iPXE reports (default: this server's own). */
  labels?: MachineLabels;
  /** Whether a script request from `ip` may store labels for `mac` (default: always). */
  acceptLabels?: (mac: string, ip: string) => boolean;
  timeouts?: Partial<HttpTimeouts>;
  /** Connection caps and the send-stall timeout (defaults: DEFAULT_LIMITS). */
  limits?: Partial<ConnectionLimits>;
  /** Flists and chunks for nodes (/flists, /chunks); the chunk store stays the caller's to close. */
  flists?: FlistOptions;
  /** The bootstrap grammar (/ipxe/<runmode>/<farmid>/..., media per request); absent: those paths are store files. */
  bootstrap?: BootstrapOptions;
  /** Node reports (POST /api/node/report) go to this registry; the caller closes it after the server. */
  registry?: NodeRegistry;
  /** Namespace tasks nodes long-poll for (POST /api/node/tasks) and answer; with the registry only. */
  tasks?: { board: TaskBoard; holds: PollHolds };
  /** Told of every request and of accepted reports (GET /metrics on the management port). */
  metrics?: HttpMetrics;
  /** Store files go out by sendfile(2) (boot/http/sendfile.ts) when its addon is built; false: always copied through buffers; or this sender. Default true. */
  sendfile?: boolean | FileSender;
}

export interface HttpServer {
  close(): Promise<void>;
  port: number;
  url: string;
}

function hostForUrl(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { log } = opts;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const configuredBase = opts.publicUrl === undefined ? undefined : checkBase(opts.publicUrl);
  let boundUrl = '';
  const sender = opts.sendfile instanceof FileSender ? opts.sendfile : FileSender.open(opts.sendfile ?? true, log);
  const largeBuffers = bufferBudget(LARGE_BUFFER_BUDGET, sender);
  const bootstrap = opts.bootstrap && (await BootstrapRoutes.open(opts.bootstrap, opts.store, log, largeBuffers));
  const files = new OpenFileCache(opts.store);
  // Bytes sendfile sends pass Node's socket counters by.
  const written = sender ? (socket: Socket) => socket.bytesWritten + sender.progress(socket).sent : undefined;
  const ctx: RouteContext = {
    store: files,
    selector: opts.selector,
    timeline: opts.timeline,
    log,
    logThrottle: new LogThrottle(FLOOD_LOG_EVERY_MS),
    labels: opts.labels ?? new MachineLabels(),
    acceptLabels: opts.acceptLabels,
    selections: new RememberedSelections(),
    largeBuffers,
    startedAt: new Date(),
    flists: opts.flists && new FlistRoutes(opts.flists, log, largeBuffers),
    bootstrap,
    reports: opts.registry && reportRequestHandler(opts.registry, { log, ...(opts.tasks ? { tasks: opts.tasks } : {}), accepted: opts.metrics && ((id) => opts.metrics!.reportAccepted(id)) }),
    baseFor: (req) => configuredBase ?? hostBase(opts.host, req) ?? boundUrl,
    record: (mac, kind, detail, reason) => {
      if (!mac) return;
      try {
        opts.timeline.record(mac, kind, detail, reason);
      } catch (e) {
        log.warn('timeline listener failed', { error: String(e) });
      }
    },
  };

  const server = createServer(
    {
      keepAlive: true,
      keepAliveTimeout: timeouts.keepAliveMs,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // Check the two limits above often, so a slow client is cut near its deadline.
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
      noDelay: true,
    },
    (req, res) => {
      opts.metrics?.request(req, res, written);
      route(ctx, req, res).catch((e: unknown) => answerFailure(log, req, res, e));
    },
  );
  const limits = limitConnections(server, { ...DEFAULT_LIMITS, ...opts.limits }, timeouts.idleMs, log, sender && ((socket) => sender.progress(socket)));
  // Answer a request whose client has already sent FIN (curl -T-, a shell's printf | nc): without this,
  // Node ends the socket at the client's FIN, before a response that needs a file open can be written.
  Object.assign(server, { httpAllowHalfOpen: true });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(log, err, socket));

  const port = await listenOn(server, opts.port, opts.host).catch(async (e: unknown) => {
    await bootstrap?.close();
    throw e;
  });
  server.on('error', (e) => log.error('http server error', { error: e.message }));
  boundUrl = `http://${hostForUrl(isWildcard(opts.host) ? '127.0.0.1' : opts.host)}:${port}`;
  const url = configuredBase ?? boundUrl;
  log.info('http listening', { url, bind: `${opts.host}:${port}` });

  return {
    port,
    url,
    close: async () => {
      limits.stop();
      await closeNow(server);
      files.close();
      await bootstrap?.close();
    },
  };
}

/** Bound to a wildcard address: the Host the client used, if it is plain; else undefined. */
function hostBase(bindHost: string, req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (isWildcard(bindHost) && host && /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/.test(host)) return `http://${host}`;
  return undefined;
}

/** A route threw: log it, and answer 500 unless the response is under way (then cut it). */
function answerFailure(log: Logger, req: IncomingMessage, res: ServerResponse, e: unknown): void {
  log.error('http request failed', { url: req.url?.slice(0, 256), error: e instanceof Error ? e.message : String(e) });
  if (res.headersSent) res.destroy();
  else if (splitUrl(req.url ?? '/').path.startsWith('/api')) sendJson(res, 500, { error: 'internal error; see the server log' });
  else sendText(res, 500, 'internal error; see the server log\n', req.method === 'HEAD');
}

/** A request Node could not parse or that timed out: a bare status line, then the socket goes. */
function answerClientError(log: Logger, err: NodeJS.ErrnoException, socket: Socket): void {
  log.debug('bad http request', { error: err.code ?? err.message });
  if (socket.writable && !socket.destroyed && err.code !== 'ECONNRESET') {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    // Destroy once the answer is flushed; a slow client never gets to hold the socket half-open.
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
    setTimeout(() => socket.destroy(), 1000).unref();
  } else {
    socket.destroy();
  }
}
