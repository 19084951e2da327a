// What the server asks of a node registry, whichever keeps it: the state
// directory's file (store.ts, the default) or PostgreSQL (pg-store.ts, when
// the configuration names `pg`). Reads are synchronous, from the registry's
// own view in memory (the API, the metrics and the DHCP path ask often);
// accepting a report and forgetting a node are asynchronous, as they write.
import { verifyNodeRequest, type Binding, type RegistryView, type RequestVerdict, type Verdict } from './verify.ts';
import type { NonceMemory } from './nonces.ts';

export interface NodeRecord {
  nodeId: string;
  publicKey: string;
  macs: string[];
  diskless: boolean;
  firstSeen: number;
  lastSeen: number;
  reports: number;
  lastReport: Record<string, unknown>;
}

export interface NodeRegistry extends RegistryView {
  bindingOf(mac: string): Binding | undefined;
  list(): NodeRecord[];
  get(nodeId: string): NodeRecord | undefined;
  /** Verifies a report body and, when valid, records it. */
  accept(body: unknown, now?: number): Promise<Verdict>;
  /** Verifies a registered node's signed request (poll, task result) in `domain`; a valid one uses up its nonce. */
  verifyRequest(body: unknown, domain: string, now?: number): RequestVerdict;
  /** Forgets a node: its MACs are free to bind to a new key. */
  forget(nodeId: string): Promise<boolean>;
  /** Waits for the writes under way; the server calls it at stop, after the routes that accept reports are closed. */
  close(): Promise<void>;
}

/** The record after an accepted report: the MAC added if new, counted, last seen now. */
export function recordAfter(old: NodeRecord | undefined, v: Extract<Verdict, { ok: true }>, now: number): NodeRecord {
  return {
    nodeId: v.nodeId,
    publicKey: v.publicKey,
    macs: old?.macs.includes(v.mac) ? old.macs : [...(old?.macs ?? []), v.mac],
    diskless: v.diskless,
    firstSeen: old?.firstSeen ?? now,
    lastSeen: now,
    reports: (old?.reports ?? 0) + 1,
    lastReport: v.payload,
  };
}

/** A registered node's signed request checked against the node's key in `nodes`; a valid one uses up its nonce. */
export function checkNodeRequest(nodes: { get(nodeId: string): NodeRecord | undefined }, nonces: NonceMemory, windowMs: number, body: unknown, domain: string, now: number): RequestVerdict {
  const v = verifyNodeRequest(body, domain, (id) => nodes.get(id)?.publicKey, nonces, now, windowMs);
  if (v.ok) nonces.remember(v.nodeId, v.nonce, v.timestamp, now - windowMs);
  return v;
}
