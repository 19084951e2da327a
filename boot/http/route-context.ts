// What the node-facing routes share: the store and selector, the timeline,
// the labels and selections learned per machine, and the base URL scripts
// point back to. Built once by startHttpServer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ImageStore } from '../store.ts';
import type { Selection, Selector } from '../selection.ts';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';
import type { LogThrottle } from '../../lib/log-throttle.ts';
import type { MachineLabels } from '../machine-labels.ts';
import type { BufferBudget } from './artifacts.ts';
import { clientIpv4 } from '../leased-addresses.ts';

export interface RouteContext {
  store: ImageStore;
  selector: Selector;
  timeline: BootTimeline;
  log: Logger;
  /** For lines any client can cause once per request: at most one per kind every interval, with a count. */
  logThrottle: LogThrottle;
  labels: MachineLabels;
  /** Whether a script request from `ip` may store labels for `mac`. */
  acceptLabels?: (mac: string, ip: string) => boolean;
  selections: RememberedSelections;
  largeBuffers: BufferBudget;
  startedAt: Date;
  /** /flists and /chunks, when the server offers flists (flist-routes.ts). */
  flists?: { serve(req: IncomingMessage, res: ServerResponse, path: string, head: boolean): Promise<void> };
  /** The bootstrap grammar (/ipxe/<runmode>/..., /iso/..., /kernel/...: bootstrap-routes.ts), when the server offers it. */
  bootstrap?: { serve(req: IncomingMessage, res: ServerResponse, path: string, base: string, head: boolean): Promise<void> };
  /** POST /api/node/* (reports, task polls and results: boot/registry/http.ts), when the server keeps a node registry. */
  reports?: (req: IncomingMessage, res: ServerResponse) => void;
  /** The base URL for scripts answering this request. */
  baseFor(req: IncomingMessage): string;
  /** Records on the timeline; a failing listener is logged, never fails the request. */
  record(mac: string | undefined, kind: BootEvent['kind'], detail: BootEvent['detail'], reason?: string): void;
}

/** The address a request came from, as timeline events name it (`client`, like TFTP's): IPv4 without the ::ffff: prefix. */
export function clientOf(req: IncomingMessage): string {
  return clientIpv4(req.socket.remoteAddress);
}

/** One route: answers the request; `head` for HEAD (headers only). */
export type RouteHandler = (ctx: RouteContext, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, head: boolean) => void | Promise<void>;

/** Selections remembered per MAC (to name downloads): bounded, oldest dropped first. */
export const MAX_REMEMBERED = 10_000;

export class RememberedSelections {
  private readonly byMac = new Map<string, Selection | undefined>();

  get(mac: string): Selection | undefined {
    return this.byMac.get(mac);
  }

  /** `undefined`: the machine asked, and no profile applied. */
  set(mac: string, selection: Selection | undefined): void {
    this.byMac.delete(mac);
    if (this.byMac.size >= MAX_REMEMBERED) {
      const oldest = this.byMac.keys().next().value;
      if (oldest !== undefined) this.byMac.delete(oldest);
    }
    this.byMac.set(mac, selection);
  }
}

/** A plain-text answer that is never cached. */
export function sendText(res: ServerResponse, status: number, text: string, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.end(head ? undefined : text);
}
