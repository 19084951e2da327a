// Store files over HTTP (kernels, initrds, anything under a mount), with the
// download on the timeline under the MAC the URL carries: as the machine's
// kernel, one of its initrds, or another file.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cleanPath, StoreNotFoundError, StorePathError } from '../store.ts';
import type { StoreEntry } from '../store.ts';
import type { BootEvent } from '../timeline.ts';
import { normalizeMac } from '../../lib/mac.ts';
import { serveEntry } from './artifacts.ts';
import { clientOf, sendText } from './route-context.ts';
import type { RouteContext } from './route-context.ts';

export async function serveArtifact(ctx: RouteContext, req: IncomingMessage, res: ServerResponse, rawPath: string, query: URLSearchParams, head: boolean): Promise<void> {
  const mac = normalizeMac(query.get('mac') ?? '');
  const refuse = (status: number, message: string) => {
    sendText(res, status, message + '\n', head);
    ctx.record(mac, 'http.error', { path: rawPath.slice(0, 256), status, client: clientOf(req) }, message);
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
  let entry: StoreEntry;
  try {
    entry = await ctx.store.open(path);
  } catch (e) {
    if (e instanceof StorePathError) return refuse(400, 'path refused: it leaves the store');
    if (e instanceof StoreNotFoundError) return refuse(404, `not found: /${path}`);
    throw e;
  }
  const result = await serveEntry(req, res, entry, ctx.largeBuffers);
  if (!mac) return;
  const detail: BootEvent['detail'] = { path, status: result.status, bytes: result.bytes, size: entry.size, method: req.method ?? 'GET', client: clientOf(req) };
  if (result.range) detail.range = result.range;
  if (result.status >= 400) ctx.record(mac, 'http.error', detail, `status ${result.status}`);
  else ctx.record(mac, artifactKind(ctx, mac, path), detail, result.complete ? undefined : 'client closed the connection before the end');
}

/** Which profile file a download is, for the timeline: the machine's kernel, one of its initrds, or another file. */
function artifactKind(ctx: RouteContext, mac: string, path: string): 'http.kernel' | 'http.initrd' | 'http.artifact' {
  let selection = ctx.selections.get(mac);
  if (!selection) {
    try {
      selection = ctx.selector.select({ mac });
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
}
