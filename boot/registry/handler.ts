// The HTTP answer to a node's report, apart from any server: JSON text in,
// status and JSON body out (the HTTP wiring comes with the routes).
import type { NodeRegistry } from './node-registry.ts';
import type { RejectCode } from './verify.ts';

/** Largest report body accepted (a node with many disks and NICs stays far below). */
export const MAX_REPORT_BYTES = 512 * 1024;

/** The HTTP status of each refusal of a signed node message. */
export const REJECT_STATUS: Record<RejectCode, number> = {
  malformed: 400,
  'bad-signature': 403,
  'node-id-mismatch': 403,
  'mac-bound-to-another-key': 403,
  stale: 409,
  replayed: 409,
  'unknown-node': 403,
};

export async function handleReport(registry: NodeRegistry, body: Buffer, now = Date.now()): Promise<{ status: number; body: Record<string, unknown> }> {
  if (body.length > MAX_REPORT_BYTES) return { status: 413, body: { error: `a report may hold at most ${MAX_REPORT_BYTES} bytes` } };
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { status: 400, body: { error: 'the report is not JSON' } };
  }
  const v = await registry.accept(doc, now);
  if (!v.ok) return { status: REJECT_STATUS[v.code], body: { error: v.reason, code: v.code } };
  return { status: 200, body: { nodeId: v.nodeId, firstContact: v.firstContact } };
}
