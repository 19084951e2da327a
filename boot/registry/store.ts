// The node registry in files (the default; boot/state/pg-registry.ts keeps it in
// PostgreSQL): who is bound to which MAC, with each node's last
// report, kept in the server's state directory as one JSON file replaced
// atomically (temporary file, fsync, rename, fsync of the directory).
// Diskless nodes are held in memory only: their keys die with their boot,
// so writing them down would fill the file with throwaway identities.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../../lib/durable-file.ts';
import { verifyReport, type Verdict } from './verify.ts';
import { recordAfter, RegistryReads, type NodeRecord, type NodeRegistry, type RegistryOptions } from './node-registry.ts';

export type { NodeRecord, NodeRegistry };

export const REGISTRY_FILE = 'nodes.json';

export class RegistryFileError extends Error {
  constructor(path: string, why: string) {
    super(`${path}: ${why}; move it away to start with an empty registry`);
    this.name = 'RegistryFileError';
  }
}

export type { RegistryOptions };

export class Registry extends RegistryReads implements NodeRegistry {
  private readonly file: string;
  private saving: Promise<void> = Promise.resolve();

  private constructor(stateDir: string, opts: RegistryOptions) {
    super(opts);
    this.file = join(stateDir, REGISTRY_FILE);
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
      for (const n of doc.nodes) r.view.put(n);
    }
    return r;
  }

  /** Verifies a report body and, when valid, records it (and persists nodes with disks). */
  async accept(body: unknown, now = Date.now()): Promise<Verdict> {
    const v = verifyReport(body, this, this.nonces, now, this.windowMs);
    if (!v.ok) return v;
    this.nonces.remember(v.nodeId, v.nonce, v.timestamp, now - this.windowMs);
    if (v.replaces) this.view.drop(v.replaces);
    const old = this.view.get(v.nodeId);
    this.view.put(recordAfter(old, v, now));
    if (!v.diskless || (old && !old.diskless)) await this.save();
    return v;
  }

  /** Forgets a node: its MACs are free to bind to a new key. */
  async forget(nodeId: string): Promise<boolean> {
    if (!this.view.drop(nodeId)) return false;
    await this.save();
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
