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
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard-page.ts';

const TOKEN_COOKIE = 'zeroboot_token';

/** The token from the dashboard's cookie; honoured for reads only, so another site cannot make a browser write. */
function cookieToken(header: string | undefined): string | undefined {
  const m = /(?:^|;\s*)zeroboot_token=([A-Za-z0-9_-]+)/.exec(header ?? '');
  return m?.[1];
}

function serveDashboard(res: import('node:http').ServerResponse, head: boolean): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : DASHBOARD_HTML);
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
      const cookie = read ? cookieToken(req.headers.cookie) : undefined;
      const authorized = opts.token === undefined || bearerMatches(req.headers.authorization, opts.token) || (cookie !== undefined && bearerMatches(`Bearer ${cookie}`, opts.token));
      if (path !== '/api/health' && !authorized) {
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
      if (read && path === '/dashboard/') return serveDashboard(res, method === 'HEAD');
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
      return closeNow(server);
    },
  };
}
