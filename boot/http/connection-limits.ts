// Connection limits for the HTTP server, so that no client (or crowd of
// clients) can exhaust its file descriptors or memory: a cap on connections
// open at once, a cap per client address, a send-stall timeout that cuts a
// connection whose client has stopped reading a response, and the idle limit.
// Both timeouts are checked here rather than with socket.setTimeout(), whose
// first expiry after a write is skipped while that write is pending, so a
// stalled reader lived twice the idle limit.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';
import { clientIpv4 } from '../leased-addresses.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';

export interface ConnectionLimits {
  /** Connections open at once, all clients together; more are closed as they arrive. 0: no cap. */
  maxConnections: number;
  /** Connections open at once from one client address; more are closed as they arrive. 0: no cap. */
  maxPerAddress: number;
  /** A connection with response bytes waiting that drains none of them for this long is closed. 0: off. */
  sendStallMs: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = { maxConnections: 1024, maxPerAddress: 32, sendStallMs: 30_000 };

interface Watched {
  /** Bytes the kernel has taken so far (written minus still queued in Node). */
  drained: number;
  read: number;
  /** When `drained` last moved, or the queue was last empty. */
  progressAt: number;
  /** When bytes last moved either way. */
  activeAt: number;
}

/** An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; count it as a.b.c.d. */
function clientAddress(socket: Socket): string {
  return clientIpv4(socket.remoteAddress);
}

/**
 * Applies `limits` and the idle limit (`idleMs`, 0: none) to `server`'s
 * connections. Call before listen(); stop() ends the checks (call it when the
 * server closes).
 */
/** Bytes sent on a socket behind its back (sendfile), and whether such a send is under way. */
export type SideProgress = (socket: Socket) => { sent: number; sending: boolean };

export function limitConnections(server: Server, limits: ConnectionLimits, idleMs: number, log: Logger, side?: SideProgress): { stop(): void } {
  // Node closes connections beyond this at accept, before any parsing.
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  const perAddress = new Map<string, number>();
  const watched = new Map<Socket, Watched>();
  const refusals = new LogThrottle(FLOOD_LOG_EVERY_MS);

  const noteRefusal = (limit: 'total' | 'perAddress', address: string) => {
    const count = refusals.note(limit);
    if (count === undefined) return;
    log.warn('http connections refused at the limits', {
      limit,
      refusedSinceLastLine: count,
      last: address,
      maxConnections: limits.maxConnections,
      maxPerAddress: limits.maxPerAddress,
    });
  };

  server.on('drop', (data?: { remoteAddress?: string }) => noteRefusal('total', data?.remoteAddress ?? ''));

  // Prepended, so a refused socket is gone before the HTTP parser reads from it.
  server.prependListener('connection', (socket: Socket) => {
    const address = clientAddress(socket);
    const n = perAddress.get(address) ?? 0;
    if (limits.maxPerAddress > 0 && n >= limits.maxPerAddress) {
      socket.destroy();
      noteRefusal('perAddress', address);
      return;
    }
    perAddress.set(address, n + 1);
    watched.set(socket, { drained: 0, read: 0, progressAt: Date.now(), activeAt: Date.now() });
    socket.once('close', () => {
      watched.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
  });

  const limitsMs = [limits.sendStallMs, idleMs].filter((ms) => ms > 0);
  if (limitsMs.length === 0) return { stop() {} };
  // One timer for all connections: a stalled client costs a map entry, not a timer.
  const tick = setInterval(
    () => {
      const now = Date.now();
      for (const [socket, w] of watched) {
        const queued = socket.writableLength;
        const extra = side?.(socket) ?? { sent: 0, sending: false };
        const drained = socket.bytesWritten - queued + extra.sent;
        if (drained !== w.drained || socket.bytesRead !== w.read) w.activeAt = now;
        if ((queued === 0 && !extra.sending) || drained !== w.drained) w.progressAt = now;
        w.drained = drained;
        w.read = socket.bytesRead;
        if (limits.sendStallMs > 0 && now - w.progressAt >= limits.sendStallMs) {
          log.debug('http client stopped reading; connection closed', { client: clientAddress(socket), queued, stalledMs: now - w.progressAt });
          socket.destroy();
        } else if (idleMs > 0 && now - w.activeAt >= idleMs) {
          log.debug('http connection idle; closed', { client: clientAddress(socket), idleMs: now - w.activeAt });
          socket.destroy();
        }
      }
    },
    Math.max(100, Math.min(1000, ...limitsMs.map((ms) => ms / 4))),
  );
  tick.unref();
  return { stop: () => clearInterval(tick) };
}
