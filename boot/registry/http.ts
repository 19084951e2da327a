// A node report request (POST REPORT_PATH) answered from the registry: the
// body is read up to MAX_REPORT_BYTES (a larger one is cut off with 413),
// then handled by handler.ts. The server's routes can mount this; tests use
// it behind a plain http.Server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPORT_PATH } from '../../lib/signed-report.ts';
import { handleReport, MAX_REPORT_BYTES } from './handler.ts';
import type { Registry } from './store.ts';

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

export function reportRequestHandler(registry: Registry, now: () => number = Date.now): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.url !== REPORT_PATH) return send(res, 404, { error: `reports go to POST ${REPORT_PATH}` });
    if (req.method !== 'POST') return send(res, 405, { error: `reports go to POST ${REPORT_PATH}` });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPORT_BYTES) {
        send(res, 413, { error: `a report may hold at most ${MAX_REPORT_BYTES} bytes` });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      handleReport(registry, Buffer.concat(chunks), now()).then(
        (r) => send(res, r.status, r.body),
        (e: Error) => send(res, 500, { error: `the registry could not record the report: ${e.message}` }),
      );
    });
  };
}
