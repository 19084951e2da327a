// The bootstrap grammar on the node-facing port (bootstrap-grammar.ts):
// /ipxe/... answers the script, /uefi/... a UKI, /iso/... a hybrid ISO,
// /usb/... and /uefimg/... the USB disk image (/krn/... 501: not offered), each with the farm id in its
// kernel command line, built per request through the media builders and
// kept in a bounded cache (bootstrap-cache.ts); /kernel/<name> serves a
// kernel set's kernel and /kernel/<name>/initrd/<n> its initrds. A kernel
// set is a profile of the configuration; the URL's <kernel> names one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Logger } from '../log.ts';
import type { Profile } from '../selection.ts';
import { StoreNotFoundError, StorePathError } from '../store.ts';
import type { ImageStore, StoreEntry } from '../store.ts';
import { serveEntry } from './artifacts.ts';
import type { BufferBudget } from './artifacts.ts';
import { sendText } from './route-context.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';
import { ScriptValueError } from '../../lib/ipxe-script.ts';
import { bootstrapCmdline, BootstrapRequestError, parseBootstrapPath } from './bootstrap-grammar.ts';
import type { BootstrapFormat, BootstrapRequest } from './bootstrap-grammar.ts';
import { renderBootstrapScript } from './bootstrap-script.ts';
import { DEFAULT_MEDIA_LIMITS, MediaBusyError, MediaCache, MediaTimeoutError } from './bootstrap-cache.ts';

/** What a media builder is given (image/media's MediaInput): files on disk and the line to embed. */
export interface MediaInput {
  kernel: string;
  initrd: string;
  cmdline: string;
}
/** Writes the medium to `outPath`; when `signal` aborts (the build timed out) it stops, killing any program it started. */
export type MediaBuilder = (input: MediaInput, outPath: string, signal: AbortSignal) => Promise<void>;

/** image/media's buildUki, buildIso and buildUsb, or stand-ins with the same contract. */
export interface MediaBuilders {
  uki: MediaBuilder;
  iso: MediaBuilder;
  usb: MediaBuilder;
}

export interface BootstrapOptions {
  /** The kernel sets /kernel/<name> and the URL's <kernel> may name. */
  profiles: Profile[];
  /** The kernel set used when the URL names none (default: the first profile). */
  defaultKernel?: string;
  /** Without builders, the media formats answer 501 and /ipxe/ and /kernel/ still work. */
  builders?: MediaBuilders;
  /** Folder the media cache lives in (default: the system's temporary folder). */
  cacheParent?: string;
  /** cacheParent is this server's alone (under its state directory): cache folders a crashed run left there are removed at start. */
  sweepCache?: boolean;
  /** Bytes of built media kept (default 1 GiB). */
  maxCacheBytes?: number;
  /** Media builds at once (default 1). */
  maxBuilds?: number;
  /** Media builds waiting for a slot before requests are refused with 503 (default 8). */
  maxQueuedBuilds?: number;
  /** Media requests one client address may have waiting at once (default 2): one node cannot fill the build queue for the others. */
  maxMediaPerAddress?: number;
  /** A build running longer is stopped and its requests answered 503 (default 120 s). */
  buildTimeoutMs?: number;
}

/** Which builder and file name each media format uses; usb and uefimg are the same image (one cache entry). */
const MEDIA: Record<Exclude<BootstrapFormat, 'ipxe' | 'krn'>, { builder: keyof MediaBuilders; ext: string }> = {
  uefi: { builder: 'uki', ext: 'efi' },
  iso: { builder: 'iso', ext: 'iso' },
  usb: { builder: 'usb', ext: 'img' },
  uefimg: { builder: 'usb', ext: 'img' },
};

const RETRY_AFTER_S = 5;

export class BootstrapRoutes {
  private readonly opts: BootstrapOptions;
  private readonly store: ImageStore;
  private readonly log: Logger;
  private readonly buffers: BufferBudget;
  private readonly cache: MediaCache;
  private readonly throttle = new LogThrottle(FLOOD_LOG_EVERY_MS);
  /** Media requests waiting (built or cached) per client address; an address leaves the map at 0. */
  private readonly perAddress = new Map<string, number>();

  private constructor(opts: BootstrapOptions, store: ImageStore, log: Logger, buffers: BufferBudget, cache: MediaCache) {
    this.opts = opts;
    this.store = store;
    this.log = log;
    this.buffers = buffers;
    this.cache = cache;
  }

  static async open(opts: BootstrapOptions, store: ImageStore, log: Logger, buffers: BufferBudget): Promise<BootstrapRoutes> {
    const cache = await MediaCache.open({
      parent: opts.cacheParent ?? tmpdir(),
      sweep: opts.sweepCache,
      maxBytes: opts.maxCacheBytes ?? DEFAULT_MEDIA_LIMITS.maxBytes,
      maxBuilds: opts.maxBuilds ?? DEFAULT_MEDIA_LIMITS.maxBuilds,
      maxQueued: opts.maxQueuedBuilds ?? DEFAULT_MEDIA_LIMITS.maxQueued,
      buildTimeoutMs: opts.buildTimeoutMs ?? DEFAULT_MEDIA_LIMITS.buildTimeoutMs,
    });
    return new BootstrapRoutes(opts, store, log, buffers, cache);
  }

  close(): Promise<void> {
    return this.cache.close();
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string, base: string, head: boolean): Promise<void> {
    let request: BootstrapRequest;
    try {
      request = parseBootstrapPath(path);
    } catch (e) {
      if (e instanceof BootstrapRequestError) return sendText(res, e.status, e.message + '\n', head);
      throw e;
    }
    const name = request.kind === 'kernel' ? request.name : (request.kernel ?? this.opts.defaultKernel ?? this.opts.profiles[0]?.name);
    const set = this.opts.profiles.find((p) => p.name === name);
    if (!set) return sendText(res, 404, name === undefined ? 'missing kernel: this server has no profiles\n' : `missing kernel: no kernel set named ${JSON.stringify(name)}\n`, head);
    if (request.kind === 'kernel') {
      const file = request.initrd === undefined ? set.kernel : set.initrd[request.initrd];
      if (file === undefined) return sendText(res, 404, `missing kernel: kernel set ${set.name} has ${set.initrd.length} initrd(s)\n`, head);
      const entry = await this.openFile(file);
      if (!entry) return sendText(res, 404, `missing kernel: ${file} of kernel set ${set.name} is not in the store\n`, head);
      await serveEntry(req, res, entry, this.buffers);
      return;
    }
    // Open every file now: a set whose kernel is gone is the reference's 404, before any script or build.
    const files = await this.openSet(set);
    if (!files) return sendText(res, 404, `missing kernel: a file of kernel set ${set.name} is not in the store\n`, head);
    let cmdline: string;
    try {
      cmdline = bootstrapCmdline(request, set, base);
    } catch (e) {
      await closeAll(files);
      if (e instanceof BootstrapRequestError) return sendText(res, e.status, e.message + '\n', head);
      throw e;
    }
    const title = `runmode ${request.runmode}, farm ${request.farmId ?? 0}, kernel ${set.name}`;
    if (request.format === 'ipxe') {
      await closeAll(files);
      try {
        return sendText(res, 200, renderBootstrapScript({ base, kernel: set.name, initrds: set.initrd.length, cmdline, title }), head);
      } catch (e) {
        if (e instanceof ScriptValueError) return sendText(res, 400, e.message + '\n', head);
        throw e;
      }
    }
    if (request.format === 'krn') {
      await closeAll(files);
      // Embedding a script in iPXE means building iPXE; the UKI and the ISO boot the kernel with no iPXE at all.
      return sendText(res, 501, `krn (iPXE as a Linux kernel) is not offered here: use /iso/${request.runmode}/... or /usb/${request.runmode}/... for BIOS machines\n`, head);
    }
    const media = MEDIA[request.format];
    const builder = this.opts.builders?.[media.builder];
    if (!builder) {
      await closeAll(files);
      return sendText(res, 501, `this server builds no boot media (no media builders given); /ipxe/${request.runmode}/... still works\n`, head);
    }
    const key = [media.builder, set.name, ...files.map((f) => `${f.path}:${f.etag}`), cmdline].join('\n');
    const address = req.socket.remoteAddress ?? '';
    const mine = this.perAddress.get(address) ?? 0;
    if (mine >= (this.opts.maxMediaPerAddress ?? DEFAULT_MEDIA_LIMITS.maxPerAddress)) {
      await closeAll(files);
      this.note('address', 'media request refused: too many from one address', { address, waiting: mine });
      res.setHeader('Retry-After', String(RETRY_AFTER_S));
      return sendText(res, 503, `busy: ${mine} boot media requests from your address are still being answered; retry in ${RETRY_AFTER_S} seconds\n`, head);
    }
    this.perAddress.set(address, mine + 1);
    let entry: StoreEntry;
    try {
      entry = await this.cache.get(key, async (out, work, signal) => {
        const input = { kernel: `${work}/vmlinuz`, initrd: `${work}/initrd.img`, cmdline };
        await writeEntries([files[0]], input.kernel);
        // Linux unpacks concatenated initramfs archives in order: a set's initrds become one.
        await writeEntries(files.slice(1), input.initrd);
        const started = Date.now();
        await builder(input, out, signal);
        this.log.info('boot medium built', { format: request.format, kernel: set.name, farm: request.farmId ?? 0, ms: Date.now() - started });
      }, `.${media.ext}`);
    } catch (e) {
      if (e instanceof MediaBusyError) {
        this.note('busy', 'media build refused: too many builds', { reason: e.message });
        res.setHeader('Retry-After', String(RETRY_AFTER_S));
        return sendText(res, 503, `busy: too many boot media being built; retry in ${RETRY_AFTER_S} seconds\n`, head);
      }
      if (e instanceof MediaTimeoutError) {
        this.note('timeout', 'media build stopped: it ran too long', { kernel: set.name, format: request.format, reason: e.message });
        res.setHeader('Retry-After', String(RETRY_AFTER_S));
        return sendText(res, 503, `busy: building the ${request.format} medium took too long and was stopped; retry in ${RETRY_AFTER_S} seconds\n`, head);
      }
      this.note('failed', 'media build failed', { kernel: set.name, format: request.format, error: e instanceof Error ? e.message : String(e) });
      return sendText(res, 500, `building the ${request.format} medium failed; see the server log\n`, head);
    } finally {
      await closeAll(files);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    }
    const farm = request.farmId === undefined ? '' : `-${request.farmId}`;
    res.setHeader('Content-Disposition', `attachment; filename="zos-${request.runmode}${farm}.${media.ext}"`);
    await serveEntry(req, res, entry, this.buffers);
  }

  private async openFile(file: string): Promise<StoreEntry | undefined> {
    try {
      return await this.store.open(file);
    } catch (e) {
      if (e instanceof StoreNotFoundError || e instanceof StorePathError) return undefined;
      throw e;
    }
  }

  /** The kernel then each initrd, all open; undefined (none left open) if one is missing. */
  private async openSet(set: Profile): Promise<StoreEntry[] | undefined> {
    const files: StoreEntry[] = [];
    for (const file of [set.kernel, ...set.initrd]) {
      const entry = await this.openFile(file);
      if (!entry) {
        await closeAll(files);
        return undefined;
      }
      files.push(entry);
    }
    return files;
  }

  private note(kind: string, message: string, fields: Record<string, unknown>): void {
    const count = this.throttle.note(kind);
    if (count !== undefined) this.log.warn(message, { ...fields, count });
  }
}

async function closeAll(entries: StoreEntry[]): Promise<void> {
  await Promise.all(entries.map((e) => e.close().catch(() => undefined)));
}

/** Writes the entries one after the other into `file`. */
async function writeEntries(entries: StoreEntry[], file: string): Promise<void> {
  const out = await open(file, 'w');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (const entry of entries) {
      for (let pos = 0; pos < entry.size; ) {
        const n = await entry.readInto(buf, pos);
        if (n === 0) throw new Error(`${entry.path} ended at ${pos} of ${entry.size} bytes while being copied`);
        await out.write(buf, 0, n);
        pos += n;
      }
    }
  } finally {
    await out.close();
  }
}
