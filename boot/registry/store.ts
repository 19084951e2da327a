// The node registry: who is bound to which MAC, with each node's last
// report, kept in the server's state directory as one JSON file replaced
// atomically (temporary file, fsync, rename, fsync of the directory).
// Diskless nodes are held in memory only: their keys die with their boot,
// so writing them down would fill the file with throwaway identities.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../../lib/durable-file.ts';
import { NonceMemory } from './nonces.ts';
import { DEFAULT_WINDOW_MS, verifyNodeRequest, verifyReport, type Binding, type RegistryView, type RequestVerdict, type Verdict } from './verify.ts';

export const REGISTRY_FILE = 'nodes.json';

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

export class RegistryFileError extends Error {
  constructor(path: string, why: string) {
    super(`${path}: ${why}; move it away to start with an empty registry`);
    this.name = 'RegistryFileError';
  }
}

export interface RegistryOptions {
  windowMs?: number;
  nonceCapacity?: number;
}

export class Registry implements RegistryView {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly macs = new Map<string, string>();
  private readonly nonces: NonceMemory;
  private readonly windowMs: number;
  private readonly file: string;
  private saving: Promise<void> = Promise.resolve();

  private constructor(stateDir: string, opts: RegistryOptions) {
    this.file = join(stateDir, REGISTRY_FILE);
    this.windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    this.nonces = new NonceMemory(opts.nonceCapacity);
  }

  static async open(stateDir: string, opts: RegistryOptions = {}): Promise<Registry> {
    const r = new Registry(stateDir, opts);
    let text: string | undefined;
    try {
      text = await readFile(r.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      let doc: { version?: number; nodes?: NodeRecord[] };
      try {
        doc = JSON.parse(text);
      } catch {
        throw new RegistryFileError(r.file, 'not JSON');
      }
      if (doc.version !== 1 || !Array.isArray(doc.nodes)) throw new RegistryFileError(r.file, 'not a zeroboot node registry (version 1)');
      for (const n of doc.nodes) r.put(n);
    }
    return r;
  }

  private put(n: NodeRecord): void {
    this.nodes.set(n.nodeId, n);
    for (const mac of n.macs) this.macs.set(mac, n.nodeId);
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

  /** Verifies a report body and, when valid, records it (and persists nodes with disks). */
  async accept(body: unknown, now = Date.now()): Promise<Verdict> {
    const v = verifyReport(body, this, this.nonces, now, this.windowMs);
    if (!v.ok) return v;
    this.nonces.remember(v.nodeId, v.nonce, v.timestamp, now - this.windowMs);
    if (v.replaces) this.drop(v.replaces);
    const old = this.nodes.get(v.nodeId);
    this.put({
      nodeId: v.nodeId,
      publicKey: v.publicKey,
      macs: old?.macs.includes(v.mac) ? old.macs : [...(old?.macs ?? []), v.mac],
      diskless: v.diskless,
      firstSeen: old?.firstSeen ?? now,
      lastSeen: now,
      reports: (old?.reports ?? 0) + 1,
      lastReport: v.payload,
    });
    if (!v.diskless || (old && !old.diskless)) await this.save();
    return v;
  }

  /** Verifies a registered node's signed request (poll, task result) in `domain`; a valid one uses up its nonce. */
  verifyRequest(body: unknown, domain: string, now = Date.now()): RequestVerdict {
    const v = verifyNodeRequest(body, domain, (id) => this.nodes.get(id)?.publicKey, this.nonces, now, this.windowMs);
    if (v.ok) this.nonces.remember(v.nodeId, v.nonce, v.timestamp, now - this.windowMs);
    return v;
  }

  /** Forgets a node: its MACs are free to bind to a new key. */
  async forget(nodeId: string): Promise<boolean> {
    if (!this.drop(nodeId)) return false;
    await this.save();
    return true;
  }

  private drop(nodeId: string): boolean {
    const n = this.nodes.get(nodeId);
    if (!n) return false;
    this.nodes.delete(nodeId);
    for (const mac of n.macs) if (this.macs.get(mac) === nodeId) this.macs.delete(mac);
    return true;
  }

  /** Waits for the writes under way; the server calls it at stop, after the routes that accept reports are closed. */
  async close(): Promise<void> {
    await this.saving;
  }

  private save(): Promise<void> {
    // One write at a time, in order; each writes the registry as it is then.
    const next = this.saving.then(() => this.write());
    this.saving = next.catch(() => undefined);
    return next;
  }

  private async write(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const nodes = this.list().filter((n) => !n.diskless);
    await writeFileDurably(this.file, JSON.stringify({ version: 1, nodes }) + '\n', 0o600);
  }
}
