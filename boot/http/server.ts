// The node-facing HTTP side of the boot server (node:http): routes requests to
// the chain script, the per-machine script and store files, and records
// what each machine fetched on the boot timeline. A request can fail; the
// server never does.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import type { ImageStore } from '../store.ts';
import { cleanPath, StoreNotFoundError, StorePathError } from '../store.ts';
import type { Labels, Selection, Selector } from '../selection.ts';
import { LABELS, NoProfileError } from '../selection.ts';
import type { BootTimeline, BootEvent } from '../timeline.ts';
import { normalizeMac } from '../../lib/mac.ts';
import type { Logger } from '../log.ts';
import { CmdlineError } from '../../lib/cmdline.ts';
import { checkBase, renderChainScript, renderErrorScript, renderMachineScript, ScriptTemplateError, ScriptValueError } from '../../lib/ipxe-script.ts';
import { bufferBudget, LARGE_BUFFER_BUDGET, serveEntry } from './artifacts.ts';
import type { ServeResult } from './artifacts.ts';
import { handleNodeApi, sendJson } from './api.ts';
import { MachineLabels } from '../machine-labels.ts';
import { clientIpv4 } from '../leased-addresses.ts';
import { closeNow, listenOn, splitUrl } from './listen.ts';
import { DEFAULT_LIMITS, limitConnections } from './connection-limits.ts';
import type { ConnectionLimits } from './connection-limits.ts';

export interface HttpTimeouts {
  /** Time allowed to receive the request headers (slowloris guard). */
  headersMs: number;
  /** Time allowed to receive the whole request. */
  requestMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveMs: number;
  /** A connection with no traffic either way for this long is closed (stalled readers). */
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: HttpTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, idleMs: 60_000 };

export interface HttpServerOptions {
  store: ImageStore;
  selector: Selector;
  timeline: BootTimeline;
  log: Logger;
  host: string;
  /** 0 picks an ephemeral port. */
  port: number;
  /** Base URL clients use; default http://<host>:<port> (or the request's Host when bound to a wildcard address). */
  publicUrl?: string;
  /** Labels learned per MAC, shared with DHCP and TFTP/GRUB: the script request adds what iPXE reports (default: this server's own). */
  labels?: MachineLabels;
  /** Whether a script request from `ip` may store labels for `mac` (default: always). */
  acceptLabels?: (mac: string, ip: string) => boolean;
  timeouts?: Partial<HttpTimeouts>;
  /** Connection caps and the send-stall timeout (defaults: DEFAULT_LIMITS). */
  limits?: Partial<ConnectionLimits>;
}

export interface HttpServer {
  close(): Promise<void>;
  port: number;
  url: string;
}

/** Selections remembered per MAC (to name downloads): bounded, oldest dropped first. */
const MAX_REMEMBERED = 10_000;

interface Remembered {
  selection?: Selection;
}

function hostForUrl(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function sendText(res: ServerResponse, status: number, text: string, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.end(head ? undefined : text);
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { store, selector, timeline, log } = opts;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const configuredBase = opts.publicUrl === undefined ? undefined : checkBase(opts.publicUrl);
  const remembered = new Map<string, Remembered>();
  const machineLabels = opts.labels ?? new MachineLabels();
  const startedAt = new Date();
  const largeBuffers = bufferBudget(LARGE_BUFFER_BUDGET);
  let boundUrl = '';

  const remember = (mac: string, r: Remembered) => {
    remembered.delete(mac);
    if (remembered.size >= MAX_REMEMBERED) {
      const oldest = remembered.keys().next().value;
      if (oldest !== undefined) remembered.delete(oldest);
    }
    remembered.set(mac, r);
  };

  /** The base URL for scripts: configured, bound, or (wildcard bind) the Host the client used, if it is plain. */
  const baseFor = (req: IncomingMessage): string => {
    if (configuredBase) return configuredBase;
    const host = req.headers.host;
    if (isWildcard(opts.host) && host && /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/.test(host)) return `http://${host}`;
    return boundUrl;
  };

  const record = (mac: string | undefined, kind: BootEvent['kind'], detail: BootEvent['detail'], reason?: string) => {
    if (!mac) return;
    try {
      timeline.record(mac, kind, detail, reason);
    } catch (e) {
      log.warn('timeline listener failed', { error: String(e) });
    }
  };

  const sendScript = (res: ServerResponse, text: string, head: boolean, status = 200) => {
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.setHeader('Cache-Control', 'no-store');
    res.end(head ? undefined : text);
  };

  const machineScript = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams, head: boolean) => {
    const rawMac = query.get('mac') ?? '';
    const mac = normalizeMac(rawMac);
    if (!mac) {
      const hint = `the request for a boot script carries no valid mac (got "${rawMac.slice(0, 40)}"); chain ${baseFor(req)}/boot.ipxe instead`;
      sendScript(res, renderErrorScript(hint), head, 400);
      return;
    }
    const labels: Labels = { mac };
    for (const key of LABELS) {
      const v = query.get(key);
      if (key !== 'mac' && v) labels[key] = v.slice(0, 256);
    }
    const facts: Record<string, string> = {};
    for (const key of ['uuid', 'serial', 'arch', 'platform', 'hostname', 'manufacturer', 'product']) {
      const v = query.get(key);
      if (v) facts[key] = v.slice(0, 256);
    }
    // Labels stored for a MAC steer DHCP and GRUB too, so only the machine itself may set them; any
    // request still gets the script its labels select (scripts are no secret), and a MAC not yet
    // on the timeline gets no entry from a stranger.
    const from = clientIpv4(req.socket.remoteAddress);
    const trusted = opts.acceptLabels?.(mac, from) ?? true;
    if (trusted) machineLabels.note(mac, labels);
    else facts.labels = `not stored: the request came from ${from}, not from the address leased to this MAC`;
    const recordHere = trusted || timeline.events(mac).length > 0 ? record : () => undefined;
    let selection: Selection | undefined;
    try {
      selection = selector.select({ ...machineLabels.get(mac), ...labels });
      const text = renderMachineScript({ profile: selection.profile, args: selection.args, base: baseFor(req), mac, group: selection.group, reason: selection.reason });
      if (trusted) remember(mac, { selection });
      sendScript(res, text, head);
      recordHere(mac, 'http.script', { profile: selection.profile.name, ...(selection.group ? { group: selection.group } : {}), selection: selection.reason, ...facts });
    } catch (e) {
      if (trusted) remember(mac, { selection });
      if (!(e instanceof NoProfileError || e instanceof CmdlineError || e instanceof ScriptTemplateError || e instanceof ScriptValueError)) throw e;
      // iPXE shows only an error code for an HTTP error; a script can say why.
      sendScript(res, renderErrorScript(e.message), head);
      recordHere(mac, 'http.error', { path: '/ipxe', status: 200, ...facts }, e.message);
      log.warn('no boot script for machine', { mac, error: e.message });
    }
  };

  /** Which profile file a download is, for the timeline: the machine's kernel, one of its initrds, or another file. */
  const artifactKind = (mac: string, path: string): 'http.kernel' | 'http.initrd' | 'http.artifact' => {
    let selection = remembered.get(mac)?.selection;
    if (!selection) {
      try {
        selection = selector.select({ mac });
      } catch {
        return 'http.artifact';
      }
    }
    const same = (p: string) => {
      try {
        return cleanPath(p) === path;
      } catch {
        return false;
      }
    };
    if (same(selection.profile.kernel)) return 'http.kernel';
    if (selection.profile.initrd.some(same)) return 'http.initrd';
    return 'http.artifact';
  };

  const artifact = async (req: IncomingMessage, res: ServerResponse, rawPath: string, query: URLSearchParams, head: boolean) => {
    const mac = normalizeMac(query.get('mac') ?? '');
    const refuse = (status: number, message: string) => {
      sendText(res, status, message + '\n', head);
      record(mac, 'http.error', { path: rawPath.slice(0, 256), status }, message);
    };
    let path: string;
    try {
      // Decode first, then clean: "%2e%2e/" and "..%2f" are ".." to a file system.
      path = cleanPath(decodeURIComponent(rawPath));
    } catch (e) {
      if (e instanceof URIError) return refuse(400, 'bad percent-encoding in path');
      if (e instanceof StorePathError) return refuse(400, 'path refused: it leaves the store');
      throw e;
    }
    if (path === '') return refuse(404, 'not found (try /boot.ipxe)');
    let entry;
    try {
      entry = await store.open(path);
    } catch (e) {
      if (e instanceof StorePathError) return refuse(400, 'path refused: it leaves the store');
      if (e instanceof StoreNotFoundError) return refuse(404, `not found: /${path}`);
      throw e;
    }
    const result: ServeResult = await serveEntry(req, res, entry, largeBuffers);
    if (!mac) return;
    const detail: BootEvent['detail'] = { path, status: result.status, bytes: result.bytes, size: entry.size, method: req.method ?? 'GET' };
    if (result.range) detail.range = result.range;
    if (result.status >= 400) record(mac, 'http.error', detail, `status ${result.status}`);
    else record(mac, artifactKind(mac, path), detail, result.complete ? undefined : 'client closed the connection before the end');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    const { path, query } = splitUrl(req.url ?? '/');
    if (path === '/api' || path.startsWith('/api/')) {
      handleNodeApi(method, path.slice(4), res, startedAt);
      return;
    }
    if (method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, `${method} is not supported here\n`, false);
      return;
    }
    if (path === '/boot.ipxe') {
      sendScript(res, renderChainScript(baseFor(req)), head);
      return;
    }
    if (path === '/ipxe') {
      machineScript(req, res, query, head);
      return;
    }
    await artifact(req, res, path, query, head);
  };

  const server = createServer(
    {
      keepAlive: true,
      keepAliveTimeout: timeouts.keepAliveMs,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      // Check the two limits above often, so a slow client is cut near its deadline.
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
      noDelay: true,
    },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        log.error('http request failed', { url: req.url?.slice(0, 256), error: e instanceof Error ? e.message : String(e) });
        if (res.headersSent) res.destroy();
        else if (splitUrl(req.url ?? '/').path.startsWith('/api')) sendJson(res, 500, { error: 'internal error; see the server log' });
        else sendText(res, 500, 'internal error; see the server log\n', req.method === 'HEAD');
      });
    },
  );
  const limits = limitConnections(server, { ...DEFAULT_LIMITS, ...opts.limits }, timeouts.idleMs, log);
  // Answer a request whose client has already sent FIN (curl -T-, a shell's printf | nc): without this,
  // Node ends the socket at the client's FIN, before a response that needs a file open can be written.
  Object.assign(server, { httpAllowHalfOpen: true });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    log.debug('bad http request', { error: err.code ?? err.message });
    if (socket.writable && !socket.destroyed && err.code !== 'ECONNRESET') {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      // Destroy once the answer is flushed; a slow client never gets to hold the socket half-open.
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
  });

  const port = await listenOn(server, opts.port, opts.host);
  server.on('error', (e) => log.error('http server error', { error: e.message }));
  boundUrl = `http://${hostForUrl(isWildcard(opts.host) ? '127.0.0.1' : opts.host)}:${port}`;
  const url = configuredBase ?? boundUrl;
  log.info('http listening', { url, bind: `${opts.host}:${port}` });

  return {
    port,
    url,
    close: () => {
      limits.stop();
      return closeNow(server);
    },
  };
}
