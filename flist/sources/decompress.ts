// Decompression of a pack source as a stream: gzip with node:zlib, xz, zstd
// and bzip2 through the system's `xz -dc`, `zstd -dc`, `bzip2 -dc` (Node has
// none of them built in; they stream and use another core).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Compression } from './sniff.ts';

export interface Decoded {
  /** The decompressed bytes. */
  stream: Readable;
  /** Resolves when the decompressor is done, rejects when it failed (a truncated or damaged stream). */
  done: Promise<void>;
  /** Stops the decompressor (the pack gave up). */
  close(): void;
  /** The decompressor's failure once known (set as it happens, before the reader sees its stream end). */
  failure(): Error | undefined;
}

const TOOLS: Record<string, string> = { xz: 'xz', zstd: 'zstd', bzip2: 'bzip2' };

export class DecompressError extends Error {
  override name = 'DecompressError';
}

export function decompress(input: Readable, kind: Compression): Decoded {
  let failure: Error | undefined;
  const fail = (e: Error): Error => (failure ??= e);
  if (kind === 'none') return { stream: input, done: Promise.resolve(), close: () => input.destroy(), failure: () => failure };
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    input.on('error', (e) => gunzip.destroy(e));
    input.pipe(gunzip);
    const done = new Promise<void>((resolve, reject) => {
      gunzip.on('end', resolve);
      gunzip.on('error', (e: NodeJS.ErrnoException) => reject(fail(new DecompressError(e.code === 'Z_BUF_ERROR' ? 'truncated gzip data (it ends before the gzip stream does)' : `damaged gzip data: ${e.message}`))));
    });
    done.catch(() => undefined);
    return { stream: gunzip, done, close: () => (input.destroy(), gunzip.destroy()), failure: () => failure };
  }
  const tool = TOOLS[kind];
  const child: ChildProcess = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  input.on('error', () => child.kill());
  // a decompressor that stops early closes its stdin: not our error, its exit code says what happened
  child.stdin!.on('error', () => undefined);
  input.pipe(child.stdin!);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(fail(new DecompressError(`cannot run ${tool} to decompress ${kind} data: ${e.code ?? e.message}`))));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const why = stderr.trim().split('\n').pop()?.replace(/^.*?(\(stdin\)|\*stdin\*\\?) ?: /, '') ?? '';
        reject(fail(new DecompressError(`damaged or truncated ${kind} data (${tool} -dc: ${why || (signal ?? `exit code ${code}`)})`)));
      }
    });
  });
  done.catch(() => undefined);
  return {
    stream: child.stdout!,
    done,
    failure: () => failure,
    close: () => {
      input.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
  };
}
