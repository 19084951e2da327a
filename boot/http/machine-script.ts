// GET /ipxe?mac=...: the per-machine iPXE script. The labels iPXE reports
// are stored for the MAC only when the request comes from that machine;
// anyone still gets the script the labels select (scripts are no secret).
// The kernel command line gains `zeroboot.server=<base>`: the node's agent
// reports there, and the base is the one the node just fetched its kernel
// from, so it is reachable from the node.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Labels, Selection } from '../selection.ts';
import { LABELS, NoProfileError } from '../selection.ts';
import { normalizeMac } from '../../lib/mac.ts';
import { CmdlineError, withServer } from '../../lib/cmdline.ts';
import type { KernelArgs } from '../../lib/cmdline.ts';
import { renderErrorScript, renderMachineScript, ScriptTemplateError, ScriptValueError } from '../../lib/ipxe-script.ts';
import { clientOf, sendText } from './route-context.ts';
import type { RouteContext } from './route-context.ts';

const FACTS = ['uuid', 'serial', 'arch', 'platform', 'hostname', 'manufacturer', 'product'];

export function serveMachineScript(ctx: RouteContext, req: IncomingMessage, res: ServerResponse, _path: string, query: URLSearchParams, head: boolean): void {
  const rawMac = query.get('mac') ?? '';
  const mac = normalizeMac(rawMac);
  if (!mac) {
    const hint = `the request for a boot script carries no valid mac (got "${rawMac.slice(0, 40)}"); chain ${ctx.baseFor(req)}/boot.ipxe instead`;
    sendText(res, 400, renderErrorScript(hint), head);
    return;
  }
  const labels = reportedLabels(mac, query);
  const facts = reportedFacts(query);
  // Labels stored for a MAC steer DHCP and GRUB too, so only the machine itself may set them; any
  // request still gets the script its labels select (scripts are no secret), and a MAC not yet
  // on the timeline gets no entry from a stranger.
  const from = clientOf(req);
  const trusted = ctx.acceptLabels?.(mac, from) ?? true;
  if (trusted) ctx.labels.note(mac, labels);
  else facts.labels = `not stored: the request came from ${from}, not from the address leased to this MAC`;
  const record: RouteContext['record'] = trusted || ctx.timeline.events(mac).length > 0 ? (...a) => ctx.record(...a) : () => undefined;
  let selection: Selection | undefined;
  try {
    selection = ctx.selector.select({ ...ctx.labels.get(mac), ...labels });
    const base = ctx.baseFor(req);
    const text = renderMachineScript({ profile: selection.profile, args: withServer(selection.args, selection.profile.cmdline, base), base, mac, group: selection.group, reason: selection.reason });
    if (trusted) ctx.selections.set(mac, selection);
    sendText(res, 200, text, head);
    record(mac, 'http.script', { profile: selection.profile.name, ...(selection.group ? { group: selection.group } : {}), selection: selection.reason, ...facts, client: from });
  } catch (e) {
    if (trusted) ctx.selections.set(mac, selection);
    if (!(e instanceof NoProfileError || e instanceof CmdlineError || e instanceof ScriptTemplateError || e instanceof ScriptValueError)) throw e;
    // iPXE shows only an error code for an HTTP error; a script can say why.
    sendText(res, 200, renderErrorScript(e.message), head);
    record(mac, 'http.error', { path: '/ipxe', status: 200, ...facts, client: from }, e.message);
    const count = ctx.logThrottle.note('no boot script');
    if (count !== undefined) ctx.log.warn('no boot script for machine', { mac, error: e.message, count });
  }
}


function reportedLabels(mac: string, query: URLSearchParams): Labels {
  const labels: Labels = { mac };
  for (const key of LABELS) {
    const v = query.get(key);
    if (key !== 'mac' && v) labels[key] = v.slice(0, 256);
  }
  return labels;
}

function reportedFacts(query: URLSearchParams): Record<string, string> {
  const facts: Record<string, string> = {};
  for (const key of FACTS) {
    const v = query.get(key);
    if (v) facts[key] = v.slice(0, 256);
  }
  return facts;
}
