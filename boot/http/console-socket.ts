// The dashboard's console view: a websocket per viewer at
// /api/console/<mac> on the management listener, fed from the ConsoleHub.
// The first message is one JSON text frame (the VM, whether it is live,
// whether input is allowed), then the scrollback and live output as binary
// frames. Read-only unless the configuration turns input on (which needs the
// management token). Bounded: a few viewers at once, and a viewer that does
// not read (more than `maxUnreadBytes` queued for it) is dropped.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import type { ConsoleHub } from './console-hub.ts';
import { normalizeMac } from '../../lib/mac.ts';

/** Close codes the page tells apart. */
export const CLOSE_NO_CONSOLE = 4404;
export const CLOSE_READ_ONLY = 4003;
export const CLOSE_TOO_SLOW = 4008;

export interface ConsoleSocketOptions {
  hub: ConsoleHub;
  maxClients: number;
  maxUnreadBytes: number;
  /** Keystrokes from viewers go to the VM. */
  input: boolean;
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text) + 1}\r\n\r\n${text}\n`);
}

/** The browser's Origin must be the page's own (websockets are not bound by the same-origin policy). */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export class ConsoleSockets {
  private readonly opts: ConsoleSocketOptions;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false, clientTracking: false });
  private readonly clients = new Set<WebSocket>();

  constructor(opts: ConsoleSocketOptions) {
    this.opts = opts;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Path /api/console/<mac>: upgrades an authorized same-origin request, else answers it with an HTTP error. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, rawMac: string): void {
    if (!sameOrigin(req)) return refuse(socket, 403, 'Forbidden: the console accepts the dashboard page only (Origin differs from Host)');
    const mac = normalizeMac(decodeURIComponent(rawMac));
    if (!mac) return refuse(socket, 400, 'Bad Request: not a MAC address');
    if (this.clients.size >= this.opts.maxClients) return refuse(socket, 503, `Service Unavailable: ${this.opts.maxClients} console viewers already`);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, mac));
  }

  private attach(ws: WebSocket, mac: string): void {
    const session = this.opts.hub.byMac(mac);
    if (!session) return ws.close(CLOSE_NO_CONSOLE, 'no console: not a rig VM the server was told about');
    this.clients.add(ws);
    const send = (chunk: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount + chunk.length > this.opts.maxUnreadBytes) {
        ws.terminate();
        return;
      }
      ws.send(chunk, { binary: true });
    };
    const sub = session.subscribe({ data: send, end: () => ws.close(1000, 'the VM is gone') });
    ws.on('close', () => {
      sub.unsubscribe();
      this.clients.delete(ws);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!this.opts.input) return ws.close(CLOSE_READ_ONLY, 'the console is read-only (server.management.console.input)');
      session.write(isBinary ? data : Buffer.from(data.toString('utf8')));
    });
    ws.send(JSON.stringify({ name: session.name, macs: session.macs, live: session.live, input: this.opts.input }));
    if (sub.scrollback.length > 0) send(sub.scrollback);
    if (!session.live) ws.close(1000, 'the VM is gone');
  }

  close(): void {
    for (const ws of this.clients) ws.terminate();
    this.clients.clear();
  }
}
