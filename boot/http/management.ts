// The management listener: the JSON API, the Prometheus metrics (/metrics)
// and the coming dashboard on its own address, loopback by default, apart
// from the node-facing port that every node on the boot network reaches.
// With a token, every request but /api/health must carry it as a bearer
// token (a Prometheus scrape job sends it with `authorization`).
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import type { Logger } from '../log.ts';
import { handleApi, sendJson } from './api.ts';
import type { ApiContext } from './api.ts';
import { bearerMatches } from './api-token.ts';
import { closeNow, listenOn, splitUrl } from './listen.ts';
import { TaskApi } from '../registry/task-api.ts';
import { DashboardFeed } from './dashboard-feed.ts';
import { dashboardPage } from './dashboard-page.ts';
import type { DashboardPage } from './dashboard-page.ts';
import { loadDashboardAssets } from './dashboard-assets.ts';
import type { DashboardAssets } from './dashboard-assets.ts';
import { ConsoleSockets } from './console-socket.ts';
import type { ConsoleHub } from './console-hub.ts';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const TOKEN_COOKIE = 'zeroboot_token';

/** The token from the dashboard's cookie; honoured for reads only, so another site cannot make a browser write. */
function cookieToken(header: string | undefined): string | undefined {
  const m = /(?:^|;\s*)zeroboot_token=([A-Za-z0-9_-]+)/.exec(header ?? '');
  return m?.[1];
}

function serveDashboard(page: DashboardPage, res: ServerResponse, head: boolean): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': page.csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : page.html);
}

function serveAsset(assets: DashboardAssets, name: string, res: ServerResponse, head: boolean): boolean {
  const a = assets.get(name);
  if (!a) return false;
  res.writeHead(200, { 'content-type': a.contentType, 'content-length': a.body.length, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' });
  res.end(head ? undefined : a.body);
  return true;
}

/** Rig VM consoles for the dashboard (console-hub.ts), with the viewer limits. */
export interface ManagementConsoles {
  hub: ConsoleHub;
  maxClients: number;
  /** Bytes queued for a viewer before it is dropped. */
  maxUnreadBytes: number;
  input: boolean;
}

export interface ManagementOptions {
  api: ApiContext;
  host: string;
  /** 0 picks an ephemeral port. */
  port: number;
  /** When set, required as `Authorization: Bearer <token>`. */
  token?: string;
  /** Serves GET /metrics when set. */
  metrics?: MetricsSource;
  consoles?: ManagementConsoles;
  log: Logger;
}

export interface MetricsSource {
  scrape(): Promise<{ contentType: string; text: string }>;
}

export interface ManagementServer {
  port: number;
  /** Base URL of the API, e.g. http://127.0.0.1:8081/api. */
  url: string;
  close(): Promise<void>;
}

async function sendMetrics(metrics: MetricsSource, method: string, res: ServerResponse): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return sendJson(res, 405, { error: `${method} is not supported on /metrics` }, false);
  }
  const { contentType, text } = await metrics.scrape();
  res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(method === 'HEAD' ? undefined : text);
}

export async function startManagementServer(opts: ManagementOptions): Promise<ManagementServer> {
  const { log } = opts;
  const assets = await loadDashboardAssets();
  const page = dashboardPage(assets);
  const consoles = opts.consoles && new ConsoleSockets({ hub: opts.consoles.hub, maxClients: opts.consoles.maxClients, maxUnreadBytes: opts.consoles.maxUnreadBytes, input: opts.consoles.input });
  /** Bearer header, or the dashboard's cookie on reads (a websocket handshake is a GET). */
  const isAuthorized = (req: IncomingMessage, read: boolean) => {
    if (opts.token === undefined) return true;
    const cookie = read ? cookieToken(req.headers.cookie) : undefined;
    return bearerMatches(req.headers.authorization, opts.token) || (cookie !== undefined && bearerMatches(`Bearer ${cookie}`, opts.token));
  };
  const feed = new DashboardFeed({ index: opts.api.index, timeline: opts.api.timeline, reportedAt: opts.api.reportedAt, nodeIdOf: opts.api.nodeIdOf });
  const server = createServer({ keepAlive: true, keepAliveTimeout: 5_000, headersTimeout: 10_000, requestTimeout: 30_000, noDelay: true }, (req, res) => {
    const method = req.method ?? 'GET';
    const { path, query } = splitUrl(req.url ?? '/');
    const run = async () => {
      const read = method === 'GET' || method === 'HEAD';
      // The dashboard opened as /dashboard/?token=<token> keeps the token in a cookie, as a browser cannot send a bearer header.
      if (opts.token !== undefined && read && path === '/dashboard/' && query.get('token') !== null && bearerMatches(`Bearer ${query.get('token')}`, opts.token)) {
        res.writeHead(303, { location: '/dashboard/', 'set-cookie': `${TOKEN_COOKIE}=${opts.token}; Path=/; HttpOnly; SameSite=Strict`, 'cache-control': 'no-store' });
        return res.end();
      }
      if (path !== '/api/health' && !isAuthorized(req, read)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="zeroboot"');
        const why = req.headers.authorization ? 'the bearer token is wrong' : 'this API needs "Authorization: Bearer <token>"';
        return sendJson(res, 401, { error: `${why}; the token is in the file api-token of the server's state directory` }, method === 'HEAD');
      }
      // The one API route that writes: node namespace tasks, with a request body.
      if (opts.api.tasks && TaskApi.owns(path.slice(4))) return opts.api.tasks.serve(req, res, path.slice(4), query);
      if (read && (path === '/' || path === '/dashboard')) {
        res.writeHead(302, { location: '/dashboard/' });
        return res.end();
      }
      if (read && path === '/dashboard/') return serveDashboard(page, res, method === 'HEAD');
      if (read && path.startsWith('/dashboard/') && serveAsset(assets, path.slice(11), res, method === 'HEAD')) return;
      if (read && path === '/api/consoles') {
        const list = (opts.consoles?.hub.list() ?? []).map((c) => ({ name: c.name, macs: c.macs, live: c.live, scrollbackBytes: c.scrollbackBytes }));
        return sendJson(res, 200, { consoles: list, viewers: consoles?.size ?? 0, input: opts.consoles?.input ?? false }, method === 'HEAD');
      }
      if (method === 'GET' && path === '/api/events') return feed.serve(req, res);
      if (path === '/api' || path.startsWith('/api/')) return handleApi(opts.api, method, path.slice(4), query, res);
      if (path === '/metrics' && opts.metrics) return sendMetrics(opts.metrics, method, res);
      sendJson(res, 404, { error: `nothing at ${path.slice(0, 100)}; the API is under /api (try /api/machines), metrics at /metrics` }, method === 'HEAD');
    };
    run().catch((e: unknown) => {
      log.error('management request failed', { url: req.url, error: e instanceof Error ? e.message : String(e) });
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, { error: 'internal error; see the server log' });
    });
  });
  // A client that stops reading is dropped, as on the node-facing port.
  server.setTimeout(60_000, (socket: Socket) => socket.destroy());
  server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    // A console viewer may sit quiet as long as its VM does: the listener's idle timeout must not cut it.
    (socket as Socket).setTimeout(0);
    const { path } = splitUrl(req.url ?? '/');
    const m = /^\/api\/console\/([^/]+)$/.exec(path);
    if (!m || !consoles) return socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    if (!isAuthorized(req, true)) return socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    consoles.upgrade(req, socket, head, m[1]);
  });
  const port = await listenOn(server, opts.port, opts.host);
  server.on('error', (e) => log.error('management server error', { error: e.message }));
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  const url = `http://${isIPv6(host) ? `[${host}]` : host}:${port}/api`;
  log.info('management api listening', { url, bind: `${opts.host}:${port}`, token: opts.token !== undefined });
  return {
    port,
    url,
    close: () => {
      feed.close();
      consoles?.close();
      return closeNow(server);
    },
  };
}
