// The JSON API: machines the server has seen (boot timeline, DHCP leases)
// with the profile each one selects, one machine's timeline, and health.
// Every answer, errors included, is a JSON object.
import type { ServerResponse } from 'node:http';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { normalizeMac } from '../timeline.ts';
import type { Labels, Selector } from '../selection.ts';

export interface Lease {
  mac: string;
  ip: string;
  hostname?: string;
  expires?: string;
}

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
  /** Labels the machine last reported when fetching its boot script. */
  labels?: Labels;
}

export interface ApiContext {
  timeline: BootTimeline;
  selector: Selector;
  leases?: () => Lease[];
  /** Labels seen per MAC on script fetches, for selections that depend on more than the MAC. */
  labelsFor(mac: string): Labels | undefined;
  startedAt: Date;
}

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  res.end(head ? undefined : text);
}

export function selectionView(selector: Selector, labels: Labels): SelectionView {
  try {
    const s = selector.select(labels);
    return { profile: s.profile.name, group: s.group, reason: s.reason, args: s.args };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function leaseMap(ctx: ApiContext): Map<string, Lease> {
  const out = new Map<string, Lease>();
  let list: Lease[] = [];
  try {
    list = ctx.leases?.() ?? [];
  } catch {
    // A lease source in trouble must not take the API down; machines still list.
  }
  for (const l of list) {
    const mac = normalizeMac(l.mac);
    if (mac) out.set(mac, { ...l, mac });
  }
  return out;
}

function view(ctx: ApiContext, mac: string, events: number, last: BootEvent | null, lease: Lease | undefined): MachineView {
  const labels = ctx.labelsFor(mac);
  const v: MachineView = { mac, events, last, selection: selectionView(ctx.selector, { ...labels, mac }) };
  if (lease) v.lease = lease;
  if (labels) v.labels = labels;
  return v;
}

export function listMachines(ctx: ApiContext): MachineView[] {
  const leases = leaseMap(ctx);
  const out: MachineView[] = [];
  for (const m of ctx.timeline.machines()) {
    out.push(view(ctx, m.mac, m.events, m.last, leases.get(m.mac)));
    leases.delete(m.mac);
  }
  for (const [mac, lease] of leases) out.push(view(ctx, mac, 0, null, lease));
  // Most recent activity first; machines known only from a lease last.
  return out.sort((a, b) => (b.last?.time ?? '').localeCompare(a.last?.time ?? '') || a.mac.localeCompare(b.mac));
}

export function machineDetail(ctx: ApiContext, rawMac: string): MachineView & { timeline: BootEvent[] } {
  const mac = normalizeMac(rawMac);
  if (!mac) throw new ApiError(400, `"${rawMac}" is not a MAC address (use aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff)`);
  const timeline = ctx.timeline.events(mac);
  const lease = leaseMap(ctx).get(mac);
  if (timeline.length === 0 && !lease) throw new ApiError(404, `no events or lease recorded for ${mac}`);
  return { ...view(ctx, mac, timeline.length, timeline[timeline.length - 1] ?? null, lease), timeline };
}

/** Routes /api/...; `path` is the raw path after "/api". */
export function handleApi(ctx: ApiContext, method: string, path: string, res: ServerResponse): void {
  const head = method === 'HEAD';
  try {
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new ApiError(405, `${method} is not supported; the API is read-only (GET)`);
    }
    if (path === '/health') {
      sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000), machines: ctx.timeline.machines().length }, head);
      return;
    }
    if (path === '/machines' || path === '/machines/') {
      sendJson(res, 200, { machines: listMachines(ctx) }, head);
      return;
    }
    const m = /^\/machines\/([^/]+)\/?$/.exec(path);
    if (m) {
      let raw: string;
      try {
        raw = decodeURIComponent(m[1]);
      } catch {
        throw new ApiError(400, 'the MAC in the path is not valid percent-encoding');
      }
      sendJson(res, 200, machineDetail(ctx, raw), head);
      return;
    }
    throw new ApiError(404, `no API endpoint ${path || '/'} (try /api/machines, /api/machines/<mac>, /api/health)`);
  } catch (e) {
    if (e instanceof ApiError) sendJson(res, e.status, { error: e.message }, head);
    else throw e;
  }
}
