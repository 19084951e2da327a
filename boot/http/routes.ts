// The node-facing routing table: node reports (POST /api/node/report, the
// one /api path served here: nodes send from the boot network), health and a
// refusal for the rest of /api (the API is the management listener's), the
// chain script, the per-machine script, flists and chunks, the bootstrap
// grammar (when offered: /ipxe/..., /uefi/..., /iso/..., /usb/...,
// /uefimg/..., /krn/... and /kernel/..., except a path the grammar refuses
// that is a store file), and store files for every other path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleNodeApi } from './api.ts';
import { renderChainScript } from '../../lib/ipxe-script.ts';
import { splitUrl } from './listen.ts';
import { serveArtifact } from './artifact-route.ts';
import { serveMachineScript } from './machine-script.ts';
import { sendText } from './route-context.ts';
import { FlistRoutes } from './flist-routes.ts';
import { ownsBootstrapPath, parseBootstrapPath } from './bootstrap-grammar.ts';
import { cleanPath } from '../store.ts';
import type { RouteContext, RouteHandler } from './route-context.ts';

/** Exact paths with their own handler (GET and HEAD); anything else is a store file. */
const SCRIPT_ROUTES: ReadonlyMap<string, RouteHandler> = new Map<string, RouteHandler>([
  ['/boot.ipxe', (ctx, req, res, _path, _query, head) => sendText(res, 200, renderChainScript(ctx.baseFor(req)), head)],
  ['/ipxe', serveMachineScript],
]);

export async function route(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const head = method === 'HEAD';
  const { path, query } = splitUrl(req.url ?? '/');
  if (path.startsWith('/api/node/') && ctx.reports) return ctx.reports(req, res);
  if (path === '/api' || path.startsWith('/api/')) {
    handleNodeApi(method, path.slice(4), res, ctx.startedAt);
    return;
  }
  if (method !== 'GET' && !head) {
    res.setHeader('Allow', 'GET, HEAD');
    sendText(res, 405, `${method} is not supported here\n`, false);
    return;
  }
  if (FlistRoutes.owns(path)) {
    if (ctx.flists) return ctx.flists.serve(req, res, path, head);
    return sendText(res, 404, 'not found: this server offers no flists (configuration key flists)\n', head);
  }
  if (ctx.bootstrap && ownsBootstrapPath(path) && !(refusedByGrammar(path) && (await inStore(ctx, path)))) return ctx.bootstrap.serve(req, res, path, ctx.baseFor(req), head);
  const handler = SCRIPT_ROUTES.get(path) ?? serveArtifact;
  await handler(ctx, req, res, path, query, head);
}

/** Whether the bootstrap grammar refuses `path` (then a store file there is served instead: /ipxe/ipxe.efi is the iPXE binary UEFI HTTP boot fetches). */
function refusedByGrammar(path: string): boolean {
  try {
    parseBootstrapPath(path);
    return false;
  } catch {
    return true;
  }
}

async function inStore(ctx: RouteContext, path: string): Promise<boolean> {
  try {
    const entry = await ctx.store.open(cleanPath(decodeURIComponent(path)));
    await entry.close();
    return true;
  } catch {
    return false;
  }
}
