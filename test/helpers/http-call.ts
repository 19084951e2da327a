// One HTTP request from a chosen local address (tests bind to 127.0.0.x to
// stand in for different clients), answered as status, headers and body text.
import { request } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HttpCallOptions {
  from: string;
  method?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  token?: string;
  signal?: AbortSignal;
  chunked?: boolean;
}

export function httpCall(url: string, opts: HttpCallOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    const req = request(url, { method: opts.method ?? 'GET', localAddress: opts.from, headers, agent: false, ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    // The server may answer and close before a refused body is all sent.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    req.end(opts.body);
  });
}
