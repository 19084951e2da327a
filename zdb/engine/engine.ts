// The set of namespaces under one --data/--index pair.
import fs from 'node:fs';
import path from 'node:path';
import { ZdbEngineError } from './errors.ts';
import { DESCRIPTOR_FILE, ZdbNamespace } from './namespace.ts';
import type { NamespaceContext } from './namespace.ts';
import { SyncScheduler } from './sync.ts';
import type { Engine, EngineOptions, Namespace } from './types.ts';
import { newIoCounters, type IoCounters } from './io-stats.ts';

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_DATASIZE = 256 * 1024 * 1024;
export const MIN_DATASIZE = 512 * 1024;
/** uint32 offsets in the files: a data file can not grow past 4 GiB */
export const MAX_DATASIZE = 0xffffffff;

export class ZdbEngine implements Engine {
  private opts: EngineOptions;
  private ctx: NamespaceContext;
  private open = new Map<string, ZdbNamespace>();
  /** NSLIST order, as 0-db keeps its list: default first, a deleted namespace's slot taken by the next one created */
  private slots: (string | undefined)[] = [];
  private syncer: SyncScheduler;
  private closed = false;
  private io = { index: newIoCounters(), data: newIoCounters() };

  constructor(opts: EngineOptions) {
    if (!(opts.datasize >= MIN_DATASIZE && opts.datasize <= MAX_DATASIZE)) {
      throw new ZdbEngineError(`datasize ${opts.datasize} out of range: it must be between ${MIN_DATASIZE} (0.5 MiB) and ${MAX_DATASIZE} bytes`);
    }
    this.opts = opts;
    const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.syncer = new SyncScheduler(() => [...this.open.values()].flatMap((ns) => [ns.dataFiles, ns.indexFiles]), opts.synctime);
    this.ctx = {
      opts,
      io: this.io,
      now,
      hook: (event, ...args) => opts.hooks?.(event, ...args),
      written: () => this.syncer.written(),
      log: (line) => opts.log?.(line),
    };
    fs.mkdirSync(opts.indexDir, { recursive: true });
    fs.mkdirSync(opts.dataDir, { recursive: true });
    refuseLegacyLayout(opts.indexDir);
    try {
      for (const name of listNamespaces(opts.indexDir)) this.open.set(name, ZdbNamespace.open(this.ctx, name, false));
      if (!this.open.has(DEFAULT_NAMESPACE)) this.open.set(DEFAULT_NAMESPACE, ZdbNamespace.open(this.ctx, DEFAULT_NAMESPACE, true));
      this.slots = [DEFAULT_NAMESPACE, ...[...this.open.keys()].filter((n) => n !== DEFAULT_NAMESPACE)];
    } catch (err) {
      for (const ns of this.open.values()) ns.closeFiles();
      throw err;
    }
    this.ctx.hook('namespaces-init', opts.indexDir, opts.dataDir);
  }

  ioTotals(): { index: IoCounters; data: IoCounters } {
    return { index: { ...this.io.index }, data: { ...this.io.data } };
  }

  namespaces(): string[] {
    return this.slots.filter((n) => n !== undefined);
  }

  get(name: string): Namespace | undefined {
    return this.open.get(name);
  }

  /** NSNEW. Errors carry the reference texts. */
  create(name: string): Namespace {
    if (!validName(name)) throw new ZdbEngineError('This name is not allowed');
    if (this.open.has(name)) throw new ZdbEngineError('This namespace is not available');
    let ns: ZdbNamespace;
    try {
      // leftovers of a namespace deleted while files were held open elsewhere are not reused
      fs.rmSync(path.join(this.opts.indexDir, name), { recursive: true, force: true });
      fs.rmSync(path.join(this.opts.dataDir, name), { recursive: true, force: true });
      ns = ZdbNamespace.open(this.ctx, name, true);
    } catch (err) {
      if (err instanceof ZdbEngineError) throw err;
      throw new ZdbEngineError('Could not create namespace');
    }
    this.open.set(name, ns);
    const free = this.slots.indexOf(undefined);
    if (free >= 0) this.slots[free] = name;
    else this.slots.push(name);
    this.ctx.hook('namespace-created', name);
    return ns;
  }

  /** NSDEL: closes the namespace and removes its files. */
  delete(name: string): void {
    if (name === DEFAULT_NAMESPACE) throw new ZdbEngineError('Cannot remove default namespace');
    const ns = this.open.get(name);
    if (!ns) throw new ZdbEngineError("This namespace doesn't exists");
    this.open.delete(name);
    this.slots[this.slots.indexOf(name)] = undefined;
    ns.closeFiles();
    fs.rmSync(ns.indexFiles.dir, { recursive: true, force: true });
    fs.rmSync(ns.dataFiles.dir, { recursive: true, force: true });
    this.ctx.hook('namespace-deleted', name);
  }

  /** RELOAD: closes and re-reads the namespace from disk. */
  reload(name: string): Namespace {
    const ns = this.open.get(name);
    if (!ns) throw new ZdbEngineError('Namespace not found');
    // a namespace failed by a write error is reopened from what reached the disk
    this.syncAndClose(ns);
    // opened before the old one is unlisted: a RELOAD that fails (a disk still
    // full) leaves it listed, readable and refusing writes, for a later retry
    const fresh = ZdbNamespace.open(this.ctx, name, false);
    fresh.update({ locked: ns.settings().locked, frozen: ns.settings().frozen });
    this.open.set(name, fresh);
    this.ctx.hook('namespace-reloaded', name);
    return fresh;
  }

  sync(): Promise<void> {
    return this.syncer.sync();
  }

  flush(): void {
    // every namespace is flushed even when one fails; the first failure is reported
    let failure: unknown;
    for (const ns of this.open.values()) {
      try {
        ns.flushWrites();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.syncer.stop();
    await this.syncer.drain();
    for (const ns of this.open.values()) {
      this.ctx.hook('namespace-closing', ns.name);
      this.syncAndClose(ns);
    }
    this.open.clear();
  }

  /**
   * Syncs and closes a namespace's files. A sync error of a namespace already
   * failed by a write error is expected: the writes it dropped were reported
   * when they failed, so it is closed on what reached the disk.
   */
  private syncAndClose(ns: ZdbNamespace): void {
    try {
      ns.dataFiles.syncNowSync();
      ns.indexFiles.syncNowSync();
    } catch (err) {
      if (!ns.failure()) throw err;
    }
    ns.closeFiles();
  }
}

function validName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 128 && name !== '.' && name !== '..' && !/[/\0]/.test(name);
}

function listNamespaces(indexDir: string): string[] {
  return fs
    .readdirSync(indexDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(indexDir, d.name, DESCRIPTOR_FILE)))
    .map((d) => d.name)
    .sort();
}

/** 0-db v1 kept `zdb-index-NNNNN` files; v2 refuses that layout and so do we. */
function refuseLegacyLayout(indexDir: string): void {
  const legacy = (dir: string): string | undefined => {
    const hit = fs.readdirSync(dir).find((f) => /^zdb-index-\d{5}$/.test(f));
    return hit ? path.join(dir, hit) : undefined;
  };
  let found = legacy(indexDir);
  if (!found) {
    for (const d of fs.readdirSync(indexDir, { withFileTypes: true })) {
      if (d.isDirectory()) found = legacy(path.join(indexDir, d.name));
      if (found) break;
    }
  }
  if (found) {
    throw new ZdbEngineError(
      `legacy 0-db v1 index layout found (${found}): this server reads only the v2 layout (<index>/<namespace>/i<N>); ` +
        'migrate the data with the 0-db v1 tools or point --index/--data at an empty or v2 directory',
    );
  }
}
