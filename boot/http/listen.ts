// What the node-facing and the management listeners share: splitting a
// request target, and listening with the port actually bound.
import type { Server } from 'node:http';
import { originForm } from './request-target.ts';

/** Path and query of a request target; the absolute form (RFC 9112 3.2.2) counts as its path. */
export function splitUrl(target: string): { path: string; query: URLSearchParams } {
  const url = originForm(target);
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

/** Listens on host:port (0: any free port) and resolves with the port bound; a listen error rejects. */
export async function listenOn(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/** Stops listening and ends every connection at once: keep-alive and in-flight downloads would hold close() open. */
export function closeNow(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
