// The legacy .flist surface the CLI wires: format detection, and ls, cat,
// unpack and verify over a LegacyFlist with the shared tree code (list.ts,
// unpack.ts), so both formats give the same listing and the same restore.
import type { Listing } from '../list.ts';
import { listed } from '../list.ts';
import { redact } from '../stores/url.ts';
import { catFile, unpackTree, verifyTree, type UnpackSummary } from '../unpack.ts';
import { createLegacyCodec } from './chunk.ts';
import { detectFormat, type FlistFormat } from './container.ts';
import { backendUrl, LegacyChunkReader, openLegacyStore, type LegacyStoreOptions } from './read-chunks.ts';
import { hasLegacyTables, LegacyFlist } from './reader.ts';

export { LegacyFlistError, UnknownFlistFormatError } from './errors.ts';
export type { FlistFormat };

/** 'fl' for an rfs .fl, 'legacy-tar' or 'legacy-db' for a 0-flist .flist (or its bare database); by content, not name. */
export function flistFormat(file: string): Promise<FlistFormat> {
  return detectFormat(file, hasLegacyTables);
}

async function withFlist<T>(file: string, format: FlistFormat, fn: (f: LegacyFlist) => Promise<T>): Promise<T> {
  const f = await LegacyFlist.open(file, { isDb: format === 'legacy-db' });
  try {
    return await fn(f);
  } finally {
    await f.close();
  }
}

async function withReader<T>(file: string, format: FlistFormat, opts: LegacyStoreOptions, fn: (f: LegacyFlist, r: LegacyChunkReader) => Promise<T>): Promise<T> {
  return withFlist(file, format, async (f) => {
    const store = await openLegacyStore(f, opts);
    try {
      return await fn(f, new LegacyChunkReader(f.file, store, await createLegacyCodec()));
    } finally {
      await store.close();
    }
  });
}

/**
 * The listing in the .fl shape: the metadata rows (entrypoint, readme, ...)
 * as tags, the backend as the one route (password removed).
 */
export function listLegacy(file: string, format: FlistFormat): Promise<Listing> {
  return withFlist(file, format, async (f) => {
    const tags = Object.fromEntries([...f.metadata()].filter(([k]) => k !== 'backend'));
    const backend = f.backend();
    const routes = backend ? [{ start: 0, end: 255, url: redact(backendUrl(backend)) }] : [];
    return { file: f.file, tags, routes, entries: [...f.walk()].map(listed) };
  });
}

export function catLegacy(file: string, format: FlistFormat, inner: string, opts: LegacyStoreOptions, out: NodeJS.WritableStream): Promise<void> {
  return withReader(file, format, opts, (f, r) => catFile(f, inner, r, out));
}

export function unpackLegacy(file: string, format: FlistFormat, dest: string, opts: LegacyStoreOptions, progress?: (files: number, bytes: number) => void): Promise<UnpackSummary> {
  return withReader(file, format, opts, (f, r) => unpackTree(f, dest, r, progress));
}

export function verifyLegacy(file: string, format: FlistFormat, opts: LegacyStoreOptions): Promise<{ files: number; chunks: number }> {
  return withReader(file, format, opts, (f, r) => verifyTree(f, r));
}
