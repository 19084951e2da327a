// One HTTP(S) POST of a JSON body, with node:http (node:https only for an
// https:// server). Not fetch(): the first fetch() loads undici, which kept
// ~17 MB more RSS in the agent for its whole life (26 MB at the peak), for
// one small request a minute.
import type { IncomingMessage, RequestOptions } from 'node:http';

export interface HttpAnswer {
  status: number;
  text: string;
  /** The Retry-After header in ms (seconds form only), 0 when absent. */
  retryAfterMs: number;
}

export class HttpPostError extends Error {
  override name = 'HttpPostError';
}

/** An answer longer than this is cut off: the server's replies are a few hundred bytes. */
const MAX_ANSWER = 1024 * 1024;

const client = (target: URL) => (target.protocol === 'https:' ? import('node:https') : import('node:http'));

/** Loads the client module for `url` now (the first POST then skips it); a failure surfaces at that POST. */
export function warmUpPost(url: string): void {
  try {
    client(new URL(url)).catch(() => undefined);
  } catch {
    // a bad URL: the first POST says so
  }
}

/**
 * POSTs `body` as JSON to `url`; the whole exchange (connect to the last byte
 * of the answer) ends within `timeoutMs`, or earlier when `cancel` aborts.
 */
export async function postJson(url: string, body: string, timeoutMs: number, cancel?: AbortSignal): Promise<HttpAnswer> {
  const target = new URL(url);
  const { request } = await client(target);
  const opts: RequestOptions = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    signal: cancel ? AbortSignal.any([cancel, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
  };
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = request(target, opts, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_ANSWER) req.destroy(new HttpPostError(`${url} answered more than ${MAX_ANSWER} bytes`));
        else parts.push(d);
      });
      res.on('end', () => {
        const retryAfter = Number(res.headers['retry-after'] ?? 0);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8'), retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 0 });
      });
      res.on('error', reject);
    });
    req.on('error', (e: Error) => {
      if (e.name !== 'AbortError') return reject(e);
      reject(new HttpPostError(cancel?.aborted ? `request to ${url} cancelled` : `no answer from ${url} within ${timeoutMs} ms`));
    });
    req.end(body);
  });
}
