// The outside of a legacy .flist: a tar, usually gzip-compressed, that holds
// one SQLite file, flistdb.sqlite3. Also the format check the CLI dispatches
// on: by the first bytes of the file, never by its name.
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { LegacyFlistError, UnknownFlistFormatError } from './errors.ts';

export const DB_NAME = 'flistdb.sqlite3';
/** Far above any real flist database (a few MiB); a bound for a hostile archive that inflates without end. */
export const MAX_DB_BYTES = 1024 ** 3;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0');

export type FlistFormat = 'fl' | 'legacy-tar' | 'legacy-db';

async function head(file: string, length: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new LegacyFlistError(file, `cannot open: ${(e as Error).message.split(',')[0]}`);
  }
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function isTarHeader(b: Buffer): boolean {
  return b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar';
}

/**
 * Which reader a file needs. An SQLite file is an .fl unless its tables are
 * 0-flist's (flistdb.sqlite3 taken out of its tar); a file cut inside the
 * SQLite magic still counts as an .fl, whose reader says what is wrong.
 */
export async function detectFormat(file: string, hasLegacyTables: (file: string) => boolean): Promise<FlistFormat> {
  const b = await head(file, 512);
  if (b.length === 0) throw new LegacyFlistError(file, 'the file is empty: not an flist');
  const prefix = b.subarray(0, SQLITE_MAGIC.length);
  if (prefix.equals(SQLITE_MAGIC.subarray(0, prefix.length))) return b.length >= SQLITE_MAGIC.length && hasLegacyTables(file) ? 'legacy-db' : 'fl';
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'legacy-tar';
  if (isTarHeader(b)) return 'legacy-tar';
  throw new UnknownFlistFormatError(file);
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'Z_BUF_ERROR') return 'the gzip stream is cut short';
  if (err.code === 'Z_DATA_ERROR') return `the gzip data is damaged (${err.message})`;
  if (/unexpected end of data/i.test(err.message)) return 'the tar is cut short';
  if (/invalid tar header/i.test(err.message)) return 'not a valid tar (bad header)';
  return err.message.split('\n')[0];
}

/** Extracts flistdb.sqlite3 into a new temporary directory; returns its path and a clean-up function. */
export async function extractDb(file: string, maxBytes = MAX_DB_BYTES): Promise<{ db: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'zeroboot-flist-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const db = path.join(dir, DB_NAME);
  try {
    const gz = (await head(file, 2)).equals(Buffer.from([0x1f, 0x8b]));
    const extract = tar.extract();
    let found = false;
    const consume = (async () => {
      for await (const entry of extract) {
        if (path.posix.basename(entry.header.name) !== DB_NAME || entry.header.type !== 'file' || found) {
          entry.resume();
          continue;
        }
        found = true;
        const out = await open(db, 'wx', 0o600);
        let written = 0;
        try {
          for await (const chunk of entry as AsyncIterable<Buffer>) {
            written += chunk.length;
            if (written > maxBytes) throw new LegacyFlistError(file, `${DB_NAME} is larger than ${maxBytes} bytes; refused`);
            await out.write(chunk);
          }
        } finally {
          await out.close();
        }
      }
    })();
    const feed = gz ? pipeline(createReadStream(file), createGunzip(), extract) : pipeline(createReadStream(file), extract);
    // our own refusal (the size cap) first: the stream it stops then fails with "premature close";
    // then the stream's error, which says why (the reading loop only sees the stream destroyed)
    const errors = (await Promise.allSettled([feed, consume])).flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const ours = errors.find((e) => e instanceof LegacyFlistError);
    if (ours) throw ours;
    if (errors.length > 0) throw new LegacyFlistError(file, `truncated or damaged .flist: ${reason(errors[0])}`);
    if (!found) throw new LegacyFlistError(file, `a tar without ${DB_NAME}: not a 0-flist .flist`);
    return { db, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
