// The JSON API: machines the server has seen (boot timeline, DHCP leases),
// a page at a time, in a summary form or with the profile each one selects;
// one machine's timeline; nodes that sent signed reports (the registry),
// listed and one by one with the last report; health. It is served on the management listener
// only (management.ts); the node-facing port answers health and a refusal
// (and node reports, routed before it: routes.ts).
// Every answer, errors included, is a JSON object.
import type { ServerResponse } from 'node:http';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { normalizeMac } from '../../lib/mac.ts';
import type { Labels, Selector } from '../selection.ts';
import type { IndexRow, Lease, MachineIndex } from './machine-index.ts';
import { startAfter } from './machine-index.ts';
import type { NodeRecord } from '../registry/store.ts';
import type { TaskApi } from '../registry/task-api.ts';
import { diagnose, DEFAULT_QUIET_MS, DEFAULT_REPORT_MS, type Diagnosis } from '../diagnosis.ts';

export type { Lease, MachineSummary } from './machine-index.ts';

export interface SelectionView {
  profile?: string;
  group?: string;
  reason?: string;
  args?: Record<string, string | number | null>;
  /** Set when no profile applies; the reason a machine cannot boot. */
  error?: string;
}

export interface MachineView {
  mac: string;
  events: number;
  last: BootEvent | null;
  selection: SelectionView;
  lease?: Lease;
  /** Labels the server holds for the machine (DHCP, trusted script requests). */
  labels?: Labels;
}

export interface ApiContext {
  timeline: BootTimeline;
  selector: Selector;
  /** The machine list, kept off the packet path. */
  index: MachineIndex;
  labelsFor(mac: string): Labels | undefined;
  startedAt: Date;
  /** The node registry (/api/nodes); absent: no registry, the routes answer 404. */
  nodes?: { list(): NodeRecord[]; get(nodeId: string): NodeRecord | undefined };
  /** Namespace tasks (/api/nodes/<id>/namespaces, boot/registry/task-api.ts); absent: those routes answer 404. */
  tasks?: TaskApi;
  /** When the node booted with this MAC last sent an accepted report (ms), for /api/machines/<mac>/why. */
  reportedAt?(mac: string): number | undefined;
  /** The node id bound to this MAC, if its node reported. */
  nodeIdOf?(mac: string): string | undefined;
  /** The last lines of the machine's serial console, when it is a rig VM the server holds a console for (console-hub.ts). */
  consoleTail?(mac: string): string[] | undefined;
}

export interface NodeSummary {
  nodeId: string;
  macs: string[];
  /** From the report, else from the labels DHCP or iPXE gave for one of its MACs. */
  hostname?: string;
  diskless: boolean;
  firstSeen: string;
  lastReport: string;
  reports: number;
  /** CRU, MRU, SRU, HRU as the node computed them. */
  capacity?: unknown;
}

/** Page sizes of /api/machines: the default, and the most one request may ask for. */
export const PAGE_DEFAULT = 100;
export const PAGE_MAX = 1000;
/** A page stops early rather than grow past this many bytes (it always holds one machine). */
export const PAGE_MAX_BYTES = 256 * 1024;
/** Summary pages kept per snapshot. */
const CACHED_PAGES = 64;

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function sendJsonText(res: ServerResponse, status: number, text: string | Buffer, head: boolean): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.end(head ? undefined : text);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, head = false): void {
  sendJsonText(res, status, JSON.stringify(body, null, 2) + '\n', head);
}

export function selectionView(selector: Selector, labels: Labels): SelectionView {
  try {
    const s = selector.select(labels);
    return { profile: s.profile.name, group: s.group, reason: s.reason, args: s.args };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function view(ctx: ApiContext, mac: string, events: number, last: BootEvent | null, lease: Lease | undefined): MachineView {
  const labels = ctx.labelsFor(mac);
  const v: MachineView = { mac, events, last, selection: selectionView(ctx.selector, { ...labels, mac }) };
  if (lease) v.lease = lease;
  if (labels) v.labels = labels;
  return v;
}

export async function machineDetail(ctx: ApiContext, rawMac: string): Promise<MachineView & { timeline: BootEvent[] }> {
  const mac = normalizeMac(rawMac);
  if (!mac) throw new ApiError(400, `"${rawMac}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`);
  const timeline = ctx.timeline.events(mac);
  const lease = await ctx.index.lease(mac);
  if (timeline.length === 0 && !lease) throw new ApiError(404, `no events or lease recorded for ${mac}`);
  return { ...view(ctx, mac, timeline.length, timeline[timeline.length - 1] ?? null, lease), timeline };
}

/** /api/machines/<mac>/why: the stage reached and, if it stopped, the likely cause (boot/diagnosis.ts). */
export function machineWhy(ctx: ApiContext, rawMac: string, query: URLSearchParams): Diagnosis & { mac: string } {
  const mac = normalizeMac(rawMac);
  if (!mac) throw new ApiError(400, `"${rawMac}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`);
  const events = ctx.timeline.events(mac);
  if (events.length === 0) throw new ApiError(404, `no events recorded for ${mac}: the server has seen nothing from it (is it on this segment, and does it PXE-boot?)`);
  const quietMs = intParam(query, 'quietSeconds', DEFAULT_QUIET_MS / 1000, 86_400) * 1000;
  const reportMs = intParam(query, 'reportSeconds', DEFAULT_REPORT_MS / 1000, 86_400) * 1000;
  return { mac, ...diagnose({ events, reportedAt: ctx.reportedAt?.(mac), now: Date.now(), quietMs, reportMs, console: ctx.consoleTail?.(mac) }) };
}

function intParam(query: URLSearchParams, key: string, fallback: number, max: number): number {
  const raw = query.get(key);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || n < 1 || n > max) throw new ApiError(400, `${key} must be an integer from 1 to ${max}, got "${raw.slice(0, 40)}"`);
  return n;
}

/**
 * One page of /api/machines, sorted by MAC: `limit` machines after `cursor`
 * (the `next` of the previous page), as summaries or (view=full) with the
 * selection, labels, lease and last event. `next` is null on the last page.
 */
export async function machinesPage(ctx: ApiContext, query: URLSearchParams): Promise<Buffer> {
  const viewName = query.get('view') ?? 'summary';
  if (viewName !== 'summary' && viewName !== 'full') throw new ApiError(400, `view must be summary or full, got "${viewName.slice(0, 40)}"`);
  const limit = intParam(query, 'limit', PAGE_DEFAULT, PAGE_MAX);
  const rawCursor = query.get('cursor') ?? undefined;
  const cursor = rawCursor === undefined ? undefined : normalizeMac(rawCursor);
  if (rawCursor !== undefined && !cursor) throw new ApiError(400, 'cursor must be the "next" value of the previous page');
  const snap = await ctx.index.snapshot();
  // Clients that waited for the same rebuild get one page per turn, with packets handled in between:
  // even a page already rendered costs a ~100 KiB socket write.
  await ctx.index.turn();
  const key = `${limit}/${cursor ?? ''}`;
  const cached = viewName === 'summary' ? snap.pages.get(key) : undefined;
  if (cached) return cached;
  const render = viewName === 'full' ? (r: IndexRow) => JSON.stringify(view(ctx, r.summary.mac, r.summary.events, r.last, r.lease)) : (r: IndexRow) => r.json;
  const parts: string[] = [];
  let bytes = 0;
  let i = startAfter(snap.macs, cursor);
  for (; i < snap.macs.length && parts.length < limit; i++) {
    // A rebuild under way may have dropped a machine this snapshot still lists.
    const row = snap.rows.get(snap.macs[i]);
    if (!row) continue;
    const text = render(row);
    const size = Buffer.byteLength(text) + 1;
    if (parts.length > 0 && bytes + size > PAGE_MAX_BYTES) break;
    parts.push(text);
    bytes += size;
  }
  const next = i < snap.macs.length && parts.length > 0 ? snap.macs[i - 1] : null;
  const body = joinJson(`{"total":${snap.macs.length},"next":${JSON.stringify(next)},"machines":[`, parts, bytes, ']}\n');
  if (viewName === 'summary') {
    if (snap.pages.size >= CACHED_PAGES) snap.pages.clear();
    snap.pages.set(key, body);
  }
  return body;
}

/**
 * `head`, the parts separated by commas, `tail`, written straight into one
 * Buffer of the right size (`bytes`: the parts' UTF-8 sizes plus one each).
 * Joining ~100 KiB strings first and converting them after made two large
 * strings per page, most of the garbage a busy listing produced.
 */
function joinJson(head: string, parts: string[], bytes: number, tail: string): Buffer {
  const body = Buffer.allocUnsafe(Buffer.byteLength(head) + Math.max(0, bytes - 1) + Buffer.byteLength(tail));
  let off = body.write(head);
  for (let k = 0; k < parts.length; k++) {
    if (k > 0) body[off++] = 0x2c;
    off += body.write(parts[k], off);
  }
  off += body.write(tail, off);
  return body.subarray(0, off);
}

/** What the node routes read: the registry, and the labels (a hostname before the node reports one). */
export type NodesContext = Pick<ApiContext, 'nodes' | 'labelsFor'>;

// Node ids are base58 public keys; a cursor is one of them.
const NODE_ID = /^[1-9A-HJ-NP-Za-km-z]{1,128}$/;

/**
 * One page of /api/nodes, sorted by node id: `limit` nodes (at most
 * PAGE_MAX) after `cursor` (the `next` of the previous page; null on the
 * last). The order is the ids', so a walk sees every node present
 * throughout exactly once, whatever reports or joins meanwhile.
 */
export function nodesPage(ctx: NodesContext, query: URLSearchParams): { total: number; next: string | null; nodes: NodeSummary[] } {
  const limit = intParam(query, 'limit', PAGE_DEFAULT, PAGE_MAX);
  const cursor = query.get('cursor') ?? undefined;
  if (cursor !== undefined && !NODE_ID.test(cursor)) throw new ApiError(400, 'cursor must be the "next" value of the previous page');
  const all = nodesOf(ctx).list();
  const after = all.filter((n) => cursor === undefined || n.nodeId > cursor);
  const page = after.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)).slice(0, limit);
  const next = after.length > limit ? page[page.length - 1].nodeId : null;
  return { total: all.length, next, nodes: page.map((n) => nodeSummary(ctx, n)) };
}

function nodeSummary(ctx: NodesContext, n: NodeRecord): NodeSummary {
  const reported = n.lastReport.hostname;
  const hostname = typeof reported === 'string' ? reported : n.macs.map((m) => ctx.labelsFor(m)?.hostname).find((h) => h !== undefined);
  return {
    nodeId: n.nodeId,
    macs: n.macs,
    ...(hostname !== undefined ? { hostname } : {}),
    diskless: n.diskless,
    firstSeen: new Date(n.firstSeen).toISOString(),
    lastReport: new Date(n.lastSeen).toISOString(),
    reports: n.reports,
    ...(n.lastReport.capacity !== undefined ? { capacity: n.lastReport.capacity } : {}),
  };
}

function nodesOf(ctx: NodesContext): NonNullable<ApiContext['nodes']> {
  if (!ctx.nodes) throw new ApiError(404, 'this server keeps no node registry');
  return ctx.nodes;
}

/** Path segment decoded, or a 400 naming what it should have been. */
function segment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, `the ${what} in the path is not valid percent-encoding`);
  }
}

function health(startedAt: Date): { status: string; uptimeSeconds: number } {
  return { status: 'ok', uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000) };
}

function readOnly(method: string, res: ServerResponse): void {
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    throw new ApiError(405, `${method} is not supported; the API is read-only (GET)`);
  }
}

/** Routes /api/... on the management listener; `path` is the raw path after "/api". */
export async function handleApi(ctx: ApiContext, method: string, path: string, query: URLSearchParams, res: ServerResponse): Promise<void> {
  const head = method === 'HEAD';
  try {
    readOnly(method, res);
    if (path === '/health') return sendJson(res, 200, health(ctx.startedAt), head);
    if (path === '/machines' || path === '/machines/') return sendJsonText(res, 200, await machinesPage(ctx, query), head);
    const m = /^\/machines\/([^/]+)\/?$/.exec(path);
    if (m) return sendJson(res, 200, await machineDetail(ctx, segment(m[1], 'MAC')), head);
    const w = /^\/machines\/([^/]+)\/why\/?$/.exec(path);
    if (w) return sendJson(res, 200, machineWhy(ctx, segment(w[1], 'MAC'), query), head);
    if (path === '/nodes' || path === '/nodes/') return sendJson(res, 200, nodesPage(ctx, query), head);
    const n = /^\/nodes\/([^/]+)\/?$/.exec(path);
    if (n) {
      const id = segment(n[1], 'node id');
      const node = nodesOf(ctx).get(id);
      if (!node) throw new ApiError(404, `no node ${id.slice(0, 80)} has reported (list them at /api/nodes)`);
      return sendJson(res, 200, { ...nodeSummary(ctx, node), publicKey: node.publicKey, report: node.lastReport }, head);
    }
    throw new ApiError(404, `no API endpoint ${path || '/'} (try /api/machines, /api/machines/<mac>, /api/machines/<mac>/why, /api/nodes, /api/nodes/<id>, /api/health)`);
  } catch (e) {
    if (e instanceof ApiError) sendJson(res, e.status, { error: e.message }, head);
    else throw e;
  }
}

/** /api on the node-facing port: health for probes; the machine and node data live on the management listener (node reports are routed before this, routes.ts). */
export function handleNodeApi(method: string, path: string, res: ServerResponse, startedAt: Date): void {
  const head = method === 'HEAD';
  try {
    readOnly(method, res);
    if (path === '/health') return sendJson(res, 200, health(startedAt), head);
    throw new ApiError(404, 'the API is not served on the node-facing port; ask the management listener (server.management, by default http://127.0.0.1:8081/api)');
  } catch (e) {
    if (e instanceof ApiError) sendJson(res, e.status, { error: e.message }, head);
    else throw e;
  }
}
