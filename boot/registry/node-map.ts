// The registry's view in memory: nodes by id and the MAC -> node id index,
// kept in step. Both registry backends answer reads from it.
import type { Binding } from './verify.ts';

/** One registered node, as the registry keeps it. */
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

export class NodeMap {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly macs = new Map<string, string>();

  /** Sets a node's record; MACs it no longer lists are released. */
  put(n: NodeRecord): void {
    const old = this.nodes.get(n.nodeId);
    if (old) for (const mac of old.macs) if (!n.macs.includes(mac) && this.macs.get(mac) === n.nodeId) this.macs.delete(mac);
    this.nodes.set(n.nodeId, n);
    for (const mac of n.macs) this.macs.set(mac, n.nodeId);
  }

  drop(nodeId: string): boolean {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    this.nodes.delete(nodeId);
    for (const mac of n.macs) if (this.macs.get(mac) === nodeId) this.macs.delete(mac);
    return true;
  }

  clear(): void {
    this.nodes.clear();
    this.macs.clear();
  }

  bindingOf(mac: string): Binding | undefined {
    const id = this.macs.get(mac);
    const n = id === undefined ? undefined : this.nodes.get(id);
    return n && { nodeId: n.nodeId, diskless: n.diskless };
  }

  list(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.nodes.get(nodeId);
  }
}
