// A node report request (POST REPORT_PATH) answered from the registry. Any
// node on the boot network can reach it, so it is guarded before the
// registry sees a byte: JSON only (415), a body cap (413, by Content-Length
// at once, else when the stream passes it), and a per-address rate limit
// (429 with Retry-After, which the agent retries). Refusals are logged one
// line per kind at most every REFUSAL_LOG_MS, with a count, so a flood
// cannot flood the log. The server's routes mount this; tests may use it
// behind a plain http.Server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPORT_PATH } from '../../lib/signed-report.ts';
import { clientIpv4 } from '../leased-addresses.ts';
import type { Logger } from '../log.ts';
import { handleReport, MAX_REPORT_BYTES } from './handler.ts';
import { RateLimit, type RateLimitOptions } from './rate-limit.ts';
import type { Registry } from './store.ts';

export const REFUSAL_LOG_MS = 10_000;

export interface ReportHandlerOptions {
  now?: () => number;
  /** Refusals are logged here (rate-limited); none when absent. */
  log?: Logger;
  /** Per client address; default DEFAULT_REPORT_RATE. */
  rate?: Partial<RateLimitOptions>;
}

/** A node reports every few minutes and retries with backoff: 10 at once, then one per 2 s, is far above that. */
export const DEFAULT_REPORT_RATE: RateLimitOptions = { burst: 10, perSecond: 0.5, maxClients: 10_000 };

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

/** Counts refusals per kind and logs each kind at most once per REFUSAL_LOG_MS. */
class RefusalLog {
  private readonly kinds = new Map<string, { count: number; loggedAt: number }>();
  private readonly log: Logger | undefined;
  constructor(log: Logger | undefined) {
    this.log = log;
  }
  note(kind: string, from: string, reason: string): void {
    const k = this.kinds.get(kind) ?? { count: 0, loggedAt: -Infinity };
    k.count++;
    const now = Date.now();
    if (now - k.loggedAt >= REFUSAL_LOG_MS) {
      this.log?.warn('node report refused', { kind, refusedSinceLastLine: k.count, lastFrom: from, reason: reason.slice(0, 200) });
      k.count = 0;
      k.loggedAt = now;
    }
    this.kinds.set(kind, k);
  }
}

export function reportRequestHandler(registry: Registry, opts: ReportHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const now = opts.now ?? Date.now;
  const limit = new RateLimit({ ...DEFAULT_REPORT_RATE, ...opts.rate });
  const refusals = new RefusalLog(opts.log);
  return (req, res) => {
    const from = clientIpv4(req.socket.remoteAddress);
    const refuse = (status: number, kind: string, error: string, extra: Record<string, unknown> = {}) => {
      refusals.note(kind, from, error);
      send(res, status, { error, ...extra });
    };
    if (req.url !== REPORT_PATH) return refuse(404, 'path', `reports go to POST ${REPORT_PATH}`);
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return refuse(405, 'method', `reports go to POST ${REPORT_PATH}`);
    }
    const wait = limit.take(from, now());
    if (wait > 0) {
      res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
      return refuse(429, 'rate', `too many reports from ${from}; retry in ${Math.ceil(wait / 1000)} s`);
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') return refuse(415, 'content-type', `a report is application/json, got ${JSON.stringify(type.slice(0, 60))}`);
    const tooLarge = () => {
      // The client may still be sending: answer, then close rather than read the rest.
      res.setHeader('Connection', 'close');
      res.on('finish', () => req.socket.destroy());
      refuse(413, 'size', `a report may hold at most ${MAX_REPORT_BYTES} bytes`);
    };
    if (Number(req.headers['content-length'] ?? 0) > MAX_REPORT_BYTES) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_REPORT_BYTES) {
        done = true;
        tooLarge();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      handleReport(registry, Buffer.concat(chunks), now()).then(
        (r) => {
          if (r.status >= 400) refusals.note(String(r.body.code ?? r.status), from, String(r.body.error));
          send(res, r.status, r.body);
        },
        (e: Error) => {
          opts.log?.error('the registry could not record a report', { error: e.message });
          send(res, 500, { error: `the registry could not record the report: ${e.message}` });
        },
      );
    });
  };
}
