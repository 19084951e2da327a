// The node-facing routing table: node reports (POST /api/node/report, the
// one /api path served here: nodes send from the boot network), health and a
// refusal for the rest of /api (the API is the management listener's), the
// chain script, the per-machine script, flists and chunks, the bootstrap
// grammar (when offered: it then owns /ipxe/..., /uefi/..., /iso/...,
// /usb/..., /uefimg/... and /kernel/...), and store files for every other path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { handleNodeApi } from './api.ts';
import { renderChainScript } from '../../lib/ipxe-script.ts';
import { splitUrl } from './listen.ts';
import { serveArtifact } from './artifact-route.ts';
import { serveMachineScript } from './machine-script.ts';
import { sendText } from './route-context.ts';
import { FlistRoutes } from './flist-routes.ts';
import { ownsBootstrapPath } from './bootstrap-grammar.ts';
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
  if (ctx.bootstrap && ownsBootstrapPath(path)) return ctx.bootstrap.serve(req, res, path, ctx.baseFor(req), head);
  const handler = SCRIPT_ROUTES.get(path) ?? serveArtifact;
  await handler(ctx, req, res, path, query, head);
}
