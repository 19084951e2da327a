// Serving one store file over HTTP: validators (ETag, Last-Modified),
// conditional requests, byte ranges and HEAD, following RFC 9110.
// Multiple ranges are answered properly as multipart/byteranges (up to
// MAX_RANGES; more, or overlapping ones, get the whole file with 200, which
// the RFC allows), so clients that ask for several pieces get what they asked.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { StoreEntry } from '../store.ts';
import type { FileSender, SendOutcome } from './sendfile.ts';

export const MAX_RANGES = 16;

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export type RangeRequest = { kind: 'none' } | { kind: 'unsatisfiable' } | { kind: 'ranges'; ranges: ByteRange[] };

/**
 * Parses a Range header against a representation of `size` bytes.
 * Syntax errors and other units are ignored ("none", serve 200), as the RFC
 * asks; ranges that all lie beyond the end are "unsatisfiable" (416).
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return { kind: 'none' };
  const ranges: ByteRange[] = [];
  let sawSpec = false;
  for (const rawSpec of m[1].split(',')) {
    const spec = rawSpec.trim();
    if (spec === '') continue;
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (!r || (r[1] === '' && r[2] === '')) return { kind: 'none' };
    sawSpec = true;
    if (r[1] === '') {
      // Suffix range: the last N bytes.
      const n = Number(r[2]);
      if (n === 0 || size === 0) continue;
      ranges.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    // Digit strings only, so Number() is exact or large enough to compare.
    const start = Number(r[1]);
    const end = r[2] === '' ? size - 1 : Number(r[2]);
    if (r[2] !== '' && end < start) return { kind: 'none' };
    if (start >= size) continue;
    ranges.push({ start, end: Math.min(end, size - 1) });
  }
  if (!sawSpec) return { kind: 'none' };
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'ranges', ranges };
}

const TYPES: Record<string, string> = {
  ipxe: 'text/plain; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  json: 'application/json',
  html: 'text/html; charset=utf-8',
  iso: 'application/x-iso9660-image',
  gz: 'application/gzip',
  xz: 'application/x-xz',
  zst: 'application/zstd',
  tar: 'application/x-tar',
  sha256: 'text/plain; charset=utf-8',
};

export function contentType(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return (dot > 0 && TYPES[base.slice(dot + 1).toLowerCase()]) || 'application/octet-stream';
}

function etagMatches(header: string, etag: string, weak: boolean): boolean {
  const strip = (t: string) => (weak ? t.replace(/^W\//, '') : t);
  return header.split(',').some((t) => {
    const tag = t.trim();
    if (tag === '*') return true;
    if (!weak && tag.startsWith('W/')) return false;
    return strip(tag) === strip(etag);
  });
}

/** Seconds precision, as HTTP dates carry no milliseconds. */
function notModifiedSince(header: string, mtime: Date): boolean {
  const since = Date.parse(header);
  return Number.isFinite(since) && Math.floor(mtime.getTime() / 1000) * 1000 <= since;
}

export interface ServeResult {
  status: number;
  /** Body bytes written to the socket (0 for HEAD and 304). */
  bytes: number;
  /** False when the client went away before the body was complete. */
  complete: boolean;
  range?: string;
}

/**
 * Answers `req` with `entry` (GET or HEAD). Resolves once the response has
 * finished or the client has gone; the entry is closed either way.
 */
export function serveEntry(req: IncomingMessage, res: ServerResponse, entry: StoreEntry, budget?: BufferBudget): Promise<ServeResult> {
  const head = req.method === 'HEAD';
  const size = entry.size;
  const lastModified = entry.mtime.toUTCString();
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', entry.etag);
  res.setHeader('Last-Modified', lastModified);
  const type = contentType(entry.path);

  const finish = async (status: number, body?: string): Promise<ServeResult> => {
    res.statusCode = status;
    if (body !== undefined) {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(body));
    }
    const complete = await endWithout(req, res, head ? undefined : body);
    await entry.close().catch(() => undefined);
    return { status, bytes: 0, complete };
  };

  // Preconditions, in the order RFC 9110 section 13.2.2 gives.
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined && !etagMatches(ifMatch, entry.etag, false)) return finish(412, 'precondition failed\n');
  const ifUnmodified = req.headers['if-unmodified-since'];
  if (ifMatch === undefined && ifUnmodified !== undefined && Number.isFinite(Date.parse(ifUnmodified)) && !notModifiedSince(ifUnmodified, entry.mtime)) {
    return finish(412, 'precondition failed\n');
  }
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, entry.etag, true)) return finish(304);
  } else {
    const ims = req.headers['if-modified-since'];
    if (ims !== undefined && notModifiedSince(ims, entry.mtime)) return finish(304);
  }

  let range = parseRange(req.headers.range, size);
  // If-Range: ranges only apply to the representation the client already has.
  const ifRange = req.headers['if-range'];
  if (range.kind !== 'none' && typeof ifRange === 'string') {
    const same = ifRange.startsWith('"') || ifRange.startsWith('W/') ? ifRange === entry.etag : ifRange === lastModified;
    if (!same) range = { kind: 'none' };
  }
  if (range.kind === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${size}`);
    return finish(416, 'range not satisfiable\n');
  }
  if (range.kind === 'ranges' && range.ranges.length > 1 && !multipartWorthIt(range.ranges)) range = { kind: 'none' };

  if (range.kind === 'ranges' && range.ranges.length > 1) return sendMultipart(req, res, entry, range.ranges, type, head, budget);

  const r = range.kind === 'ranges' ? range.ranges[0] : { start: 0, end: size - 1 };
  const status = range.kind === 'ranges' ? 206 : 200;
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', r.end - r.start + 1);
  const rangeText = status === 206 ? `${r.start}-${r.end}` : undefined;
  if (rangeText) res.setHeader('Content-Range', `bytes ${rangeText}/${size}`);
  if (head || size === 0) return finish(status).then((x) => ({ ...x, range: rangeText }));
  return pump(req, res, [r], entry, status, rangeText, budget);
}

/** Ends a response with an optional short body; true when it was delivered. */
async function endWithout(req: IncomingMessage, res: ServerResponse, body?: string): Promise<boolean> {
  const gone = connectionGone(req, res);
  try {
    return !(await orClosed(new Promise<void>((resolve) => res.end(body, resolve)), gone.closed)) || res.writableFinished;
  } finally {
    gone.dispose();
  }
}

/**
 * Settles when the response closes or its connection does. A pipelined
 * response still queued behind another gets no close event of its own when
 * the connection dies (Node 24 drops it with the socket, e.g. after a
 * CONNECT), so the socket is watched too; otherwise the download would wait
 * for ever with its file open.
 */
function connectionGone(req: IncomingMessage, res: ServerResponse): { closed: Promise<void>; isClosed(): boolean; dispose(): void } {
  const socket = req.socket;
  let isClosed = false;
  let resolve = (): void => undefined;
  const closed = new Promise<void>((r) => (resolve = r));
  const done = () => {
    isClosed = true;
    resolve();
  };
  if (socket.destroyed) {
    done();
    return { closed, isClosed: () => true, dispose() {} };
  }
  res.once('close', done);
  socket.once('close', done);
  return {
    closed,
    isClosed: () => isClosed,
    dispose() {
      res.off('close', done);
      socket.off('close', done);
    },
  };
}

function multipartWorthIt(ranges: ByteRange[]): boolean {
  if (ranges.length > MAX_RANGES) return false;
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  return sorted.every((r, i) => i === 0 || r.start > sorted[i - 1].end);
}

function sendMultipart(req: IncomingMessage, res: ServerResponse, entry: StoreEntry, ranges: ByteRange[], type: string, head: boolean, budget?: BufferBudget): Promise<ServeResult> {
  const boundary = `zeroboot-${randomBytes(12).toString('hex')}`;
  const heads = ranges.map(
    (r, i) => Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${r.start}-${r.end}/${entry.size}\r\n\r\n`),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = heads.reduce((n, h, i) => n + h.length + ranges[i].end - ranges[i].start + 1, tail.length);
  res.statusCode = 206;
  res.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`);
  res.setHeader('Content-Length', length);
  const text = ranges.map((r) => `${r.start}-${r.end}`).join(',');
  if (head) {
    return endWithout(req, res).then(async (complete) => {
      await entry.close().catch(() => undefined);
      return { status: 206, bytes: 0, complete, range: text };
    });
  }
  const parts: Part[] = [];
  ranges.forEach((r, i) => parts.push(heads[i], r));
  parts.push(tail);
  return pump(req, res, parts, entry, 206, text, budget);
}

/** Bytes per buffer for a download that gets large buffers from its server's budget; two per download. */
export const CHUNK_BYTES = 256 * 1024;
/** Bytes per buffer otherwise: a quarter of the speed on loopback, a quarter of the memory a stalled client holds. */
export const SMALL_CHUNK_BYTES = 64 * 1024;
/** Default budget for large buffers: 128 downloads at once get them. */
export const LARGE_BUFFER_BUDGET = 128 * 2 * CHUNK_BYTES;

/**
 * How many bytes of large copy buffers a server's downloads may hold at
 * once, and the copy buffers downloads leave behind for the next ones.
 * Large buffers make a download fast; small ones keep the memory of a crowd
 * of clients that stop reading at 128 KiB each.
 */
export interface BufferBudget {
  /** True (and the bytes are counted) if they fit. */
  take(bytes: number): boolean;
  give(bytes: number): void;
  /** A copy buffer of `bytes` (CHUNK_BYTES or SMALL_CHUNK_BYTES), reused when one is free. */
  acquire(bytes: number): Buffer;
  /** Gives a buffer from acquire() back: kept for reuse, or its memory returned to the OS. */
  recycle(buf: Buffer): void;
  /** File ranges go out by sendfile(2) when set (and the socket allows); the buffers are for the rest. */
  readonly sendfile?: FileSender;
}

/**
 * Free copy buffers kept per size: as many large ones as the budget lets
 * downloads hold (64 MiB by default), 256 small ones (16 MiB); beyond that a
 * released buffer gives its memory back at once.
 */
const KEEP_SMALL = 256;
/** Free buffers untouched for this long give their memory back, a slice per tick (each shrink is an mprotect). */
const IDLE_TRIM_MS = 5000;
const TRIM_SLICE = 4;
const TRIM_TICK_MS = 20;

/** ES2024's resizable ArrayBuffer (Node 24 has it; the project's TypeScript lib predates it). */
type Resizable = ArrayBuffer & { resize(size: number): void };
const ResizableArrayBuffer = ArrayBuffer as unknown as new (size: number, opts: { maxByteLength: number }) => Resizable;

/**
 * Copy buffers are resizable ArrayBuffers: shrinking one to 0 decommits its
 * pages at once, where a dropped Buffer waits for a GC and then often stays
 * in the malloc heap (thousands of stalled downloads left the server's RSS
 * high long after their clients had gone). But allocating and shrinking them
 * per download cost a fifth of the server's CPU in a boot storm (an mmap and
 * an mprotect each, bench/boot-storm.ts), so a few free ones are kept and
 * handed to the next download; idle ones are still given back after 5 s.
 */
export function bufferBudget(bytes: number, sendfile?: FileSender): BufferBudget {
  let left = bytes;
  const keep: Record<number, number> = { [CHUNK_BYTES]: Math.floor(bytes / CHUNK_BYTES), [SMALL_CHUNK_BYTES]: KEEP_SMALL };
  const free = new Map<number, Buffer[]>();
  let used = false;
  let timer: NodeJS.Timeout | undefined;
  const trim = () => {
    timer = undefined;
    if (used) {
      used = false;
      timer = setTimeout(trim, IDLE_TRIM_MS).unref();
      return;
    }
    let n = 0;
    for (const list of free.values()) while (list.length > 0 && n++ < TRIM_SLICE) (list.pop()!.buffer as Resizable).resize(0);
    if ([...free.values()].some((l) => l.length > 0)) timer = setTimeout(trim, TRIM_TICK_MS).unref();
  };
  return {
    sendfile,
    take(n) {
      if (n > left) return false;
      left -= n;
      return true;
    },
    give(n) {
      left += n;
    },
    acquire(n) {
      used = true;
      return free.get(n)?.pop() ?? Buffer.from(new ResizableArrayBuffer(n, { maxByteLength: n }), 0, n);
    },
    recycle(buf) {
      const list = free.get(buf.length) ?? [];
      free.set(buf.length, list);
      if (list.length >= (keep[buf.length] ?? 0)) {
        (buf.buffer as Resizable).resize(0);
        return;
      }
      list.push(buf);
      timer ??= setTimeout(trim, IDLE_TRIM_MS).unref();
    },
  };
}

type Part = Buffer | ByteRange;

/** Resolves true when `res` closes first, false when `p` settles; rejects if `p` does. */
function orClosed(p: Promise<unknown>, closed: Promise<void>): Promise<boolean> {
  return Promise.race([p.then(() => false), closed.then(() => true)]);
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => res.once('drain', resolve));
}

/** The two copy buffers of one download, given back by release(). */
interface CopyBuffers {
  bufs: [Buffer, Buffer];
  release(): void;
}

/** Large buffers when the budget allows (and the parts need them), small ones otherwise. */
function copyBuffers(longest: number, budget: BufferBudget | undefined): CopyBuffers {
  const large = Math.min(CHUNK_BYTES, longest);
  const taken = large > SMALL_CHUNK_BYTES && budget?.take(2 * CHUNK_BYTES) === true;
  const size = taken ? CHUNK_BYTES : SMALL_CHUNK_BYTES;
  const whole = budget ? [budget.acquire(size), budget.acquire(size)] : [0, 1].map(() => Buffer.allocUnsafeSlow(size));
  // A short file needs only its own length of each buffer.
  const use = Math.min(size, longest);
  return {
    bufs: [whole[0].subarray(0, use), whole[1].subarray(0, use)],
    release: () => {
      if (!budget) return;
      whole.forEach((b) => budget.recycle(b));
      if (taken) budget.give(2 * size);
    },
  };
}

/** Copies a range through the two buffers; a buffer is refilled only after the socket has taken it. */
async function copyReused(res: ServerResponse, entry: StoreEntry, r: ByteRange, bufs: Buffer[], closed: Promise<void>, sent: (n: number) => void): Promise<boolean> {
  const size = Math.min(bufs[0].length, r.end - r.start + 1);
  const flushed: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let pos = r.start;
  for (let k = 0; pos <= r.end; k++) {
    const i = k & 1;
    if (await orClosed(flushed[i], closed)) return false;
    const n = await entry.readInto(bufs[i].subarray(0, Math.min(size, r.end - pos + 1)), pos);
    if (n <= 0) throw new Error(`${entry.path} ended at byte ${pos}, before its recorded size`);
    pos += n;
    sent(n);
    flushed[i] = new Promise((resolve, reject) => res.write(bufs[i].subarray(0, n), (err) => (err ? reject(err) : resolve())));
    // Awaited on the next turn or below; this only keeps a late failure from going unhandled.
    flushed[i].catch(() => undefined);
  }
  return !(await orClosed(Promise.all(flushed), closed));
}

const NOTHING = Buffer.alloc(0);

/**
 * Sends a file range with sendfile when it can (a sender, a file behind the
 * entry, the response owning its socket); undefined when the range is the
 * copy path's. The kernel writes behind Node's back, so everything written
 * before (headers, multipart heads) must have left Node's queue first.
 */
async function sendNative(res: ServerResponse, entry: StoreEntry, r: ByteRange, sender: FileSender | undefined, closed: Promise<void>, sent: (n: number) => void): Promise<SendOutcome | undefined> {
  const socket = res.socket;
  if (!sender || !entry.fd || !socket || (socket as unknown as { _httpMessage?: unknown })._httpMessage !== res) return undefined;
  const flushed = new Promise<void>((resolve, reject) => res.write(NOTHING, (e) => (e ? reject(e) : resolve())));
  if (await orClosed(flushed, closed)) return { kind: 'closed' };
  const fileFd = await entry.fd();
  const socketFd = sender.socketFd(socket);
  if (socketFd === undefined) return undefined;
  return sender.send(socket, socketFd, fileFd, r.start, r.end - r.start + 1, closed, sent);
}

/** Writes buffers and file ranges to `res` in order with back-pressure; stops and cleans up when the client goes. */
async function pump(req: IncomingMessage, res: ServerResponse, parts: Part[], entry: StoreEntry, status: number, range: string | undefined, budget: BufferBudget | undefined): Promise<ServeResult> {
  let bytes = 0;
  const sent = (n: number) => (bytes += n);
  const gone = connectionGone(req, res);
  const closed = gone.closed;
  const longest = Math.max(...parts.map((p) => (Buffer.isBuffer(p) ? 0 : p.end - p.start + 1)));
  let buffers: CopyBuffers | undefined;
  try {
    let open = !req.socket.destroyed;
    for (const part of open ? parts : []) {
      if (Buffer.isBuffer(part)) {
        sent(part.length);
        open = res.write(part) || !(await orClosed(drained(res), closed));
      } else {
        const native = await sendNative(res, entry, part, budget?.sendfile, closed, sent);
        if (native?.kind === 'closed') open = false;
        else if (native?.kind !== 'sent') {
          buffers ??= copyBuffers(longest, budget);
          open = await copyReused(res, entry, native ? { start: native.at, end: part.end } : part, buffers.bufs, closed, sent);
        }
      }
      if (!open) break;
    }
    if (open) await orClosed(new Promise<void>((resolve) => res.end(resolve)), closed);
  } catch (err) {
    // Headers are out: the only honest signal left is a cut connection.
    res.destroy(err as Error);
  } finally {
    // The buffers go only once no write can still read them: all flushed, or the socket closed (which
    // cancels pending writes). After a write error the close comes a little later.
    const release = () => {
      buffers?.release();
      gone.dispose();
    };
    if (res.writableFinished || gone.isClosed()) release();
    else void closed.then(release);
    await entry.close().catch(() => undefined);
  }
  return { status, bytes, complete: res.writableFinished, range };
}
