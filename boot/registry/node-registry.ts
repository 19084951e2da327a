// What the server asks of a node registry, whichever keeps it: the state
// directory's file (store.ts, the default) or PostgreSQL (boot/state/pg-registry.ts, when
// the configuration names `pg`). Reads are synchronous, from the registry's
// own view in memory (the API, the metrics and the DHCP path ask often);
// accepting a report and forgetting a node are asynchronous, as they write.
import { DEFAULT_WINDOW_MS, verifyNodeRequest, type Binding, type RegistryView, type RequestVerdict, type Verdict } from './verify.ts';
import { NonceMemory } from './nonces.ts';
import { NodeMap, type NodeRecord } from './node-map.ts';

export type { NodeRecord };

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

export interface RegistryOptions {
  windowMs?: number;
  nonceCapacity?: number;
}

/** What both backends share: reads from the view in memory, and signed requests checked against it. */
export class RegistryReads {
  protected readonly view = new NodeMap();
  protected readonly nonces: NonceMemory;
  protected readonly windowMs: number;

  constructor(opts: RegistryOptions) {
    this.windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    this.nonces = new NonceMemory(opts.nonceCapacity);
  }

  bindingOf(mac: string): Binding | undefined {
    return this.view.bindingOf(mac);
  }

  list(): NodeRecord[] {
    return this.view.list();
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.view.get(nodeId);
  }

  /** Verifies a registered node's signed request (poll, task result) in `domain`; a valid one uses up its nonce. */
  verifyRequest(body: unknown, domain: string, now = Date.now()): RequestVerdict {
    const v = verifyNodeRequest(body, domain, (id) => this.view.get(id)?.publicKey, this.nonces, now, this.windowMs);
    if (v.ok) this.nonces.remember(v.nodeId, v.nonce, v.timestamp, now - this.windowMs);
    return v;
  }
}
