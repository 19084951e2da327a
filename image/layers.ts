// The image's flist layers: each source (a Debian package, a directory, an
// npm package's file, an existing .fl) becomes a .fl whose chunks sit in a
// chunk store the builder can read; the initramfs layers are then merged
// (flist/merge.ts) and the merged tree read back into cpio entries.
//
// Layers the builder packs itself have no route table (their hash then
// does not depend on where the cache lives) and fixed owners (0:0) and
// times, so the same source gives the same .fl byte for byte. Their chunks
// go to one local dir:// store, `<layerDir>/chunks`. Layers built from a
// checksummed file (a .deb by its sha256, an npm tarball by its integrity,
// a Node binary by its sha256) are kept under `<layerDir>/cached/<key>.fl`
// and reused while every chunk they name is still in the store.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChunkPool } from '../flist/chunk-pool.ts';
import type { FlEntry, FlMeta } from '../flist/fl-file.ts';
import { FlReader } from '../flist/fl-file.ts';
import { mergeFlists } from '../flist/merge.ts';
import { orderedWindow } from '../flist/ordered.ts';
import { packDir } from '../flist/pack.ts';
import { ChunkReader } from '../flist/read-chunks.ts';
import { openStore } from '../flist/stores/open.ts';
import { openRouter } from '../flist/stores/router.ts';
import type { ChunkStore } from '../flist/stores/types.ts';
import type { CpioEntry } from './cpio.ts';
import { ImageBuildError } from './errors.ts';
import type { LayerPlace } from './spec.ts';

/** What an initramfs leaves out by default: documentation, headers, translations, iconv modules, debugger helpers. */
export const DEFAULT_STRIP = [
  'usr/share/doc/', 'usr/share/man/', 'usr/share/info/', 'usr/share/lintian/', 'usr/share/bug/', 'usr/share/doc-base/', 'usr/share/locale/',
  'usr/include/', 'usr/share/gcc/', 'usr/share/gdb/', 'usr/lib/x86_64-linux-gnu/gconv/', 'usr/lib/x86_64-linux-gnu/audit/',
];
/** Files read back from the chunk store at once while writing the initramfs. */
const FILES_AT_ONCE = 16;

export type LayerKind = 'deb' | 'dir' | 'flist' | 'npm' | 'node-binary' | 'zeroboot';

/** One layer as the manifest lists it. */
export interface LayerInfo {
  name: string;
  kind: LayerKind;
  /** The package (name=version), directory, .fl path/URL or npm package it came from. */
  source: string;
  at: LayerPlace;
  /** sha256 and size of the layer's .fl file. */
  sha256: string;
  size: number;
  /** With at: boot: the .fl written next to the image (its chunks under chunks/). */
  file?: string;
}

export interface Layer {
  info: LayerInfo;
  fl: string;
}

export interface LayerBuilderOptions {
  /** Cache of packed layers and their chunks. */
  layerDir: string;
  pool: ChunkPool;
  /** The image's mtime: owners and times of packed directories are fixed to 0:0 and this. */
  mtime: number;
  progress: (message: string) => void;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function fixed(mtime: number | undefined): (e: FlEntry) => FlMeta {
  return (e) => ({ mode: e.mode, uid: 0, gid: 0, size: e.size, mtime: mtime ?? e.mtime, ctime: mtime ?? e.mtime, rdev: e.rdev });
}

export class LayerBuilder {
  readonly store: ChunkStore;
  readonly #opts: LayerBuilderOptions;
  readonly #work: string;
  readonly #storeUrl: string;
  #n = 0;

  private constructor(opts: LayerBuilderOptions, work: string) {
    this.#opts = opts;
    this.#work = work;
    this.#storeUrl = `dir://${path.resolve(opts.layerDir, 'chunks')}`;
    this.store = openStore(this.#storeUrl);
  }

  static async open(opts: LayerBuilderOptions): Promise<LayerBuilder> {
    await mkdir(opts.layerDir, { recursive: true });
    return new LayerBuilder(opts, await mkdtemp(path.join(opts.layerDir, '.work-')));
  }

  async close(): Promise<void> {
    await this.store.close();
    await rm(this.#work, { recursive: true, force: true });
  }

  /** A scratch path for this build, removed by close(). */
  scratch(name: string): string {
    return path.join(this.#work, `${++this.#n}-${name}`);
  }

  /** Packs `dir` into the store, as a .fl at `out` with owners 0:0 and the given mtime (undefined: the files' own). */
  async #pack(dir: string, out: string, mtime: number | undefined): Promise<void> {
    const raw = this.scratch('raw.fl');
    await packDir(dir, raw, { pool: this.#opts.pool, store: this.store, routes: [] });
    mergeFlists([raw], out, { meta: fixed(mtime), keepWhiteouts: true });
    await rm(raw, { force: true });
  }

  async #info(fl: string, info: Omit<LayerInfo, 'sha256' | 'size'>): Promise<Layer> {
    const data = await readFile(fl);
    return { fl, info: { ...info, sha256: sha256(data), size: data.length } };
  }

  /** Whether every chunk a cached .fl names is still in the store. */
  async #complete(fl: string): Promise<boolean> {
    if (!(await stat(fl).catch(() => undefined))) return false;
    const reader = FlReader.open(fl);
    try {
      const ids = new Map<string, Buffer>();
      for (const e of reader.walk()) for (const b of e.blocks) ids.set(b.id.toString('hex'), b.id);
      for (const id of ids.values()) if (!(await this.store.has(id))) return false;
      return true;
    } finally {
      reader.close();
    }
  }

  /**
   * A layer packed from a tree that `stage` provides, cached under `key` (a
   * checksum of the source). keepTimes: the tree's own mtimes (a package's),
   * else every time is 0.
   */
  async cached(key: string, info: Omit<LayerInfo, 'sha256' | 'size'>, keepTimes: boolean, stage: () => Promise<string>): Promise<Layer> {
    const fl = path.join(this.#opts.layerDir, 'cached', `${key}.fl`);
    if (!(await this.#complete(fl))) {
      this.#opts.progress(`packing layer ${info.name}`);
      await mkdir(path.dirname(fl), { recursive: true });
      await this.#pack(await stage(), fl, keepTimes ? undefined : 0);
    }
    return this.#info(fl, info);
  }

  /** A directory, packed afresh (its chunks dedupe in the store), owners 0:0 and times the image's. */
  async fromDir(dir: string, info: Omit<LayerInfo, 'sha256' | 'size'>): Promise<Layer> {
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new ImageBuildError(`layer ${info.name}: ${dir} is not a directory`);
    const fl = this.scratch(`${info.name}.fl`);
    await this.#pack(dir, fl, this.#opts.mtime);
    return this.#info(fl, info);
  }

  /** An existing .fl (a path, or an http(s) URL fetched into the work folder); its chunks stay in its store. */
  async fromFlist(source: string, info: Omit<LayerInfo, 'sha256' | 'size'>): Promise<Layer> {
    let fl = source;
    if (/^https?:\/\//.test(source)) {
      const res = await fetch(source).catch((e: Error) => {
        throw new ImageBuildError(`layer ${info.name}: cannot fetch ${source}: ${e.message}`);
      });
      if (!res.ok) throw new ImageBuildError(`layer ${info.name}: ${source} answered ${res.status} ${res.statusText}`);
      fl = this.scratch(`${info.name}.fl`);
      await writeFile(fl, Buffer.from(await res.arrayBuffer()));
    }
    FlReader.open(fl).close();
    return this.#info(fl, info);
  }

  /** The store to read every layer's chunks from: the local one, then the flist layers' own stores. */
  readStore(extraStores: string[]): ChunkStore {
    const urls = [...new Set([this.#storeUrl, ...extraStores])];
    return openRouter(urls.map((url) => ({ start: 0, end: 255, url })));
  }
}

/** Merges the initramfs layers (first = bottom) into one .fl. */
export function mergeLayers(layers: readonly Layer[], out: string): void {
  mergeFlists(layers.map((l) => l.fl), out);
}

/** Refuses a path that two of the `packages:` provide (they are a set, not an order: a clash is a mistake). */
export function checkPackageClashes(layers: readonly Layer[]): void {
  const owner = new Map<string, string>();
  for (const l of layers) {
    const fl = FlReader.open(l.fl);
    try {
      for (const e of fl.walk()) {
        if (e.type === 'dir') continue;
        const rel = e.path.slice(1);
        const prev = owner.get(rel);
        if (prev !== undefined) throw new ImageBuildError(`${rel} is provided by both ${prev} and ${l.info.name}`);
        owner.set(rel, l.info.name);
      }
    } finally {
      fl.close();
    }
  }
}

export function stripped(rel: string, strip: readonly string[]): boolean {
  return strip.some((p) => rel.startsWith(p) || `${rel}/` === p);
}

/** The merged tree as cpio entries (stripped paths left out), file contents read from the store. */
export async function treeEntries(mergedFl: string, store: ChunkStore, pool: ChunkPool, strip: readonly string[]): Promise<CpioEntry[]> {
  const fl = FlReader.open(mergedFl);
  try {
    const reader = new ChunkReader(fl, store, pool);
    const entries: CpioEntry[] = [];
    const files: FlEntry[] = [];
    for (const e of fl.walk()) {
      const rel = e.path.slice(1);
      if (rel === '' || stripped(rel, strip)) continue;
      const mode = e.mode & 0o7777;
      if (e.type === 'dir') entries.push({ type: 'dir', path: rel, mode });
      else if (e.type === 'symlink') entries.push({ type: 'symlink', path: rel, target: e.target ?? '' });
      else if (e.type === 'file') files.push(e);
      else if (e.type === 'char' || e.type === 'block') entries.push({ type: e.type, path: rel, mode, major: (e.rdev >>> 8) & 0xfff, minor: (e.rdev & 0xff) | ((e.rdev >>> 12) & 0xfff00) });
      else throw new ImageBuildError(`${rel}: a ${e.type} in a layer; the initramfs holds only files, directories, symlinks and devices`);
    }
    const read = async (e: FlEntry): Promise<CpioEntry> => {
      const parts: Buffer[] = [];
      for await (const c of reader.chunks(e)) parts.push(c);
      const data = Buffer.concat(parts);
      if (data.length !== e.size) throw new ImageBuildError(`${fl.file}: ${e.path}: ${data.length} bytes in its chunks, the flist says ${e.size}`);
      return { type: 'file', path: e.path.slice(1), mode: e.mode & 0o7777, data };
    };
    for await (const entry of orderedWindow(files, FILES_AT_ONCE, read)) entries.push(entry);
    return entries;
  } finally {
    fl.close();
  }
}

/** Writes an at: boot layer next to the image: <outDir>/<name>.fl and its chunks (checked) under <outDir>/chunks. */
export async function exportLayer(layer: Layer, from: ChunkStore, pool: ChunkPool, outDir: string): Promise<string> {
  const name = `${layer.info.name}.fl`;
  const to = openStore(`dir://${path.resolve(outDir, 'chunks')}`);
  const fl = FlReader.open(layer.fl);
  try {
    const reader = new ChunkReader(fl, from, pool);
    const seen = new Set<string>();
    for (const e of fl.walk()) {
      const fresh = e.blocks.filter((b) => !seen.has(b.id.toString('hex')));
      for (const b of fresh) seen.add(b.id.toString('hex'));
      if (fresh.length === 0) continue;
      // decoding checks both hashes before a chunk is served to nodes
      for await (const _plain of reader.chunks({ ...e, blocks: fresh }));
      for (const b of fresh) {
        if (await to.has(b.id)) continue;
        const data = await from.get(b.id);
        if (!data) throw new ImageBuildError(`${layer.fl}: ${e.path}: chunk ${b.id.toString('hex')} vanished from ${from.url}`);
        await to.put(b.id, data);
      }
    }
    await to.sync();
  } finally {
    fl.close();
    await to.close();
  }
  const tmp = path.join(outDir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  await copyFile(layer.fl, tmp);
  await rename(tmp, path.join(outDir, name));
  return name;
}
