// Requests on the node-facing HTTP port, by route and status class, and
// the bytes written for them (headers included). Routes are a fixed set
// named from the path's shape, never the path itself, which any client on
// the boot network chooses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { REPORT_PATH } from '../../lib/signed-report.ts';

export const HTTP_ROUTES = ['script', 'ipxe', 'file', 'flist', 'chunk', 'report', 'node_api', 'api', 'other'] as const;
export type HttpRoute = (typeof HTTP_ROUTES)[number];
const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const;

export function httpRoute(method: string, url: string): HttpRoute {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path === REPORT_PATH) return 'report';
  if (path.startsWith('/api/node/')) return 'node_api';
  if (path === '/api' || path.startsWith('/api/')) return 'api';
  if (method !== 'GET' && method !== 'HEAD') return 'other';
  if (path === '/boot.ipxe' || path === '/ipxe') return 'script';
  if (path.startsWith('/ipxe/')) return 'ipxe';
  if (path.startsWith('/flists/')) return 'flist';
  if (path.startsWith('/chunks/')) return 'chunk';
  return 'file';
}

export class HttpRequests {
  private readonly requests: Counter<'route' | 'code'>;
  private readonly bytes: Counter<'route'>;
  private readonly reports: Counter<'result'>;

  constructor(register: Registry) {
    const registers = [register];
    this.requests = new Counter({ name: 'zeroboot_http_requests_total', help: 'Requests answered on the node-facing HTTP port, by route and status class', labelNames: ['route', 'code'], registers });
    this.bytes = new Counter({ name: 'zeroboot_http_response_bytes_total', help: 'Bytes written for responses on the node-facing HTTP port (headers included), by route', labelNames: ['route'], registers });
    this.reports = new Counter({ name: 'zeroboot_node_reports_total', help: 'Node reports posted, by result (refused: any status but 200)', labelNames: ['result'], registers });
    for (const route of HTTP_ROUTES) {
      this.bytes.inc({ route }, 0);
      for (const code of STATUS_CLASSES) this.requests.inc({ route, code }, 0);
    }
    this.reports.inc({ result: 'accepted' }, 0);
    this.reports.inc({ result: 'refused' }, 0);
  }

  /** Counts `req` once its response is over (sent, or cut by the client); `written` counts the socket's bytes (default: Node's own count). */
  request(req: IncomingMessage, res: ServerResponse, written: (socket: Socket) => number = (s) => s.bytesWritten): void {
    const socket = req.socket;
    const before = written(socket);
    res.once('close', () => {
      const route = httpRoute(req.method ?? 'GET', req.url ?? '/');
      const status = res.statusCode;
      const code = status >= 500 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : '2xx';
      this.requests.inc({ route, code });
      this.bytes.inc({ route }, Math.max(0, written(socket) - before));
      if (route === 'report') this.reports.inc({ result: status === 200 ? 'accepted' : 'refused' });
    });
  }
}
