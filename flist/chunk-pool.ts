// The chunk pipeline on worker threads: hashing, Snappy and AES of one chunk
// take a few milliseconds of CPU, which would stall the event loop that
// drives the store transfers. One worker per core; each worker gets at most
// two jobs at once (one running, one waiting, so it never idles between
// messages). encodeAll/decodeAll pull from their source only while fewer than
// `capacity` chunks are in the pool, so a fast reader cannot run ahead of the
// hashing without limit. A chunk below `inlineBelow` bytes is done in the
// calling thread: posting it costs more than the work (about 0.1 ms of CPU
// per message, measured with 2 KB chunks). Unpack and pack ops (flist/unpack-ops.ts, pack-ops.ts)
// waiting in the queue go to a worker together, up to BATCH_OPS of them or
// BATCH_BYTES of chunk data in one message, for the same reason: a tree of
// small files would otherwise cost two messages per file.
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createChunkCodec, type ChunkCodec, type EncodedChunk } from './chunk.ts';
import * as errors from './errors.ts';
import { FlistError } from './errors.ts';
import type { PackOp, PackResult } from './pack-ops.ts';
import type { OpResult, UnpackOp } from './unpack-ops.ts';

type ChunkMessage = { op: 'encode'; plain: Uint8Array } | { op: 'decode'; id: Uint8Array; key: Uint8Array; data: Uint8Array };
/** The filesystem ops of unpack and pack, run on a worker in batches. */
export type FsOp = UnpackOp | PackOp;
type JobMessage = ChunkMessage | { op: 'fs'; item: FsOp };

export type WorkerJob = (ChunkMessage & { seq: number }) | { op: 'batch'; ops: FsOp[]; seq: number };

export type WorkerReply =
  | { seq: number; encoded: EncodedChunk }
  | { seq: number; plain: Uint8Array }
  | { seq: number; results: (OpResult | PackResult)[] }
  | { seq: number; error: { name: string; message: string; id?: string } };

export interface ChunkPoolOptions {
  /** Worker threads; default: the cores available. */
  threads?: number;
  /** Chunks in the pool at once for encodeAll/decodeAll; default 4 per thread. */
  capacity?: number;
  /** Chunks smaller than this many bytes are done in the calling thread; default 16 KiB, 0 sends all to workers. */
  inlineBelow?: number;
  /**
   * Node's on-disk compile cache for the workers (NODE_COMPILE_CACHE), false
   * for none; default: that variable's value, else Node's default folder.
   */
  compileCache?: string | false;
}

/**
 * Each worker strips the types of its modules when it starts, which loads
 * the stripper (about 100 ms of CPU per worker, more than unpacking 5 MB);
 * with the compile cache, a worker after the first loads the stripped code.
 */
function compileCacheDir(opt: string | false | undefined): string | undefined {
  if (opt === false || process.env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  return opt ?? process.env.NODE_COMPILE_CACHE ?? path.join(tmpdir(), 'zeroboot-compile-cache');
}

export interface ChunkToDecode {
  id: Buffer;
  key: Buffer;
  data: Uint8Array;
}

interface Job {
  message: JobMessage;
  resolve: (reply: WorkerReply | OpResult | PackResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** the jobs of each message in flight: one, or a batch of filesystem ops */
  running: Map<number, Job[]>;
}

const PER_WORKER = 2;
const BATCH_OPS = 64;
const BATCH_BYTES = 4 << 20;

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * A copy in an ArrayBuffer of its own, to be transferred. postMessage clones
 * a view's whole ArrayBuffer: a 512 KiB slice of a file read whole, or a
 * 32-byte hash in Node's 8 KiB Buffer pool, would otherwise copy all of it.
 */
export function ownCopy(u: Uint8Array): Uint8Array<ArrayBuffer> {
  // not zero-filled first: one pass over the bytes instead of two
  const copy = Buffer.allocUnsafeSlow(u.byteLength);
  copy.set(u);
  return new Uint8Array(copy.buffer, 0, u.byteLength);
}

/** `u` itself when it spans all of its ArrayBuffer (Node's pooled small Buffers never do), else ownCopy(u): for buffers the sender drops after posting. */
export function ownBuffer(u: Uint8Array): Uint8Array<ArrayBuffer> {
  if (u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && u.buffer instanceof ArrayBuffer) return new Uint8Array(u.buffer);
  return ownCopy(u);
}

/** The chunk bytes an op moves across threads (a pack op's piece comes back encoded when no dir takes it). */
function opBytes(op: FsOp): number {
  if (op.op === 'pack') return op.plain?.byteLength ?? op.file!.length;
  return op.op === 'file' ? op.chunks.reduce((n, c) => n + (c.data?.byteLength ?? 0), 0) : 0;
}

/**
 * The ids and keys of a batch's chunks, copied into one ArrayBuffer that is
 * transferred: cloning two 32-byte ArrayBuffers per chunk cost twice the
 * CPU of the rest of the message (measured: 390 against 180 us per 64 ops).
 */
class HashArena {
  readonly bytes: Uint8Array<ArrayBuffer>;
  #used = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  take(u: Uint8Array): Uint8Array<ArrayBuffer> {
    const view = new Uint8Array(this.bytes.buffer, this.#used, u.byteLength);
    view.set(u);
    this.#used += u.byteLength;
    return view;
  }
}

function hashBytes(op: FsOp): number {
  return op.op === 'file' ? op.chunks.reduce((n, c) => n + c.id.byteLength + c.key.byteLength, 0) : 0;
}

/** The op as posted: chunk data in an ArrayBuffer of its own (transferred, see ownCopy), ids and keys in the batch's arena. */
function copyOp(op: FsOp, transfer: ArrayBuffer[], hashes: HashArena): FsOp {
  if (op.op === 'pack') {
    if (op.plain === undefined) return op;
    const plain = ownCopy(op.plain);
    transfer.push(plain.buffer);
    return { ...op, plain };
  }
  if (op.op === 'symlink') return { ...op, target: ownCopy(op.target) };
  if (op.op !== 'file') return op;
  const chunks = op.chunks.map((c) => {
    if (c.data === undefined) return { id: hashes.take(c.id), key: hashes.take(c.key), path: c.path };
    const data = ownCopy(c.data);
    transfer.push(data.buffer);
    return { id: hashes.take(c.id), key: hashes.take(c.key), data };
  });
  return { ...op, chunks };
}

/** Rebuilds a worker's error as the same class from errors.ts, so callers can test instanceof. */
export function revive(e: { name: string; message: string; id?: string }): Error {
  const cls = (errors as Record<string, unknown>)[e.name];
  if (typeof cls !== 'function' || !(cls.prototype instanceof Error)) return new FlistError(`chunk worker: ${e.message}`);
  // A native Error with the class's prototype: instanceof works, and the
  // subclass constructor (which formats its message) is not run twice.
  const err = Reflect.construct(Error, [e.message], cls) as Error & { id?: string };
  err.name = e.name;
  err.stack = `${e.name}: ${e.message}\n    at (chunk worker thread)`;
  if (e.id !== undefined) err.id = e.id;
  return err;
}

export class ChunkPool {
  readonly threads: number;
  readonly capacity: number;
  readonly inlineBelow: number;
  readonly #compileCache: string | undefined;
  #inline: ChunkCodec | undefined;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #seq = 0;
  #failure: Error | undefined;
  #closing = false;
  #pumpScheduled = false;

  private constructor(threads: number, capacity: number, inlineBelow: number, compileCache: string | undefined) {
    this.#compileCache = compileCache;
    this.threads = threads;
    this.capacity = capacity;
    this.inlineBelow = inlineBelow;
  }

  static async create(options: ChunkPoolOptions = {}): Promise<ChunkPool> {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new FlistError(`chunk pool: threads must be a positive integer, got ${threads}`);
    const capacity = options.capacity ?? threads * 4;
    if (!Number.isInteger(capacity) || capacity < 1) throw new FlistError(`chunk pool: capacity must be a positive integer, got ${capacity}`);
    const inlineBelow = options.inlineBelow ?? 16 * 1024;
    const pool = new ChunkPool(threads, capacity, inlineBelow, compileCacheDir(options.compileCache));
    try {
      // the threads first: they start while this one sets up its own codec (and its caller goes on)
      const started = Promise.all(Array.from({ length: threads }, () => pool.#start()));
      // awaited below; this only keeps a failure from counting as unhandled if the codec fails first
      started.catch(() => undefined);
      pool.#inline = await createChunkCodec();
      await started;
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  #start(): Promise<void> {
    const env = this.#compileCache === undefined ? process.env : { ...process.env, NODE_COMPILE_CACHE: this.#compileCache };
    const worker = new Worker(new URL('./chunk-worker.ts', import.meta.url), { env });
    const slot: Slot = { worker, running: new Map() };
    this.#slots.push(slot);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: WorkerReply | { ready: true }) => {
        if ('ready' in msg) {
          ready = true;
          worker.unref();
          resolve();
          return;
        }
        const jobs = slot.running.get(msg.seq);
        if (jobs === undefined) return;
        slot.running.delete(msg.seq);
        if (slot.running.size === 0) worker.unref();
        if ('results' in msg) jobs.forEach((job, i) => job.resolve(msg.results[i]));
        else if (jobs[0].message.op === 'fs') for (const job of jobs) job.resolve('error' in msg ? { error: msg.error } : { error: { name: 'FlistError', message: 'a reply of another kind to filesystem ops' } });
        else jobs[0].resolve(msg);
        this.#schedulePump();
      });
      const die = (why: string) => {
        const e = new FlistError(`a chunk worker thread stopped: ${why}`);
        if (!ready) reject(e);
        if (!this.#closing) this.#fail(e);
      };
      worker.on('error', (e) => die(e.message.split('\n')[0]));
      worker.on('exit', (code) => die(`exit code ${code}`));
    });
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const slot of this.#slots) {
      for (const jobs of slot.running.values()) for (const job of jobs) job.reject(e);
      slot.running.clear();
    }
    for (const job of this.#queue.splice(0)) job.reject(e);
  }

  /**
   * Posts once the callers woken by a reply (or the current caller) have
   * queued what they will: a pump at once sent the first op alone and
   * averaged 4.6 unpack ops per message on a tree of 6000 files.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /**
   * Sends queued jobs to the workers with room, least busy first, one
   * message per worker per round, so that a burst of filesystem ops is
   * shared between the workers (each message takes its share of the queue)
   * instead of going to the first one in a single batch.
   */
  #pump(): void {
    let room = this.#slots.reduce((n, s) => n + Math.max(0, PER_WORKER - s.running.size), 0);
    while (room > 0 && this.#queue.length > 0) {
      for (const slot of [...this.#slots].sort((a, b) => a.running.size - b.running.size)) {
        if (slot.running.size >= PER_WORKER || this.#queue.length === 0) continue;
        this.#post(slot, Math.ceil(this.#queue.length / room));
        room--;
      }
    }
  }

  /** Posts the job at the head of the queue to `slot`; filesystem ops go with up to `share` - 1 more. */
  #post(slot: Slot, share: number): void {
    const job = this.#queue.shift()!;
    const seq = this.#seq++;
    slot.worker.ref();
    const m = job.message;
    if (m.op === 'fs') {
      const jobs = [job, ...this.#moreFsOps(opBytes(m.item), share)];
      slot.running.set(seq, jobs);
      const items = jobs.map((j) => (j.message as { item: FsOp }).item);
      const hashes = new HashArena(items.reduce((n, op) => n + hashBytes(op), 0));
      const transfer: ArrayBuffer[] = [hashes.bytes.buffer];
      const ops = items.map((op) => copyOp(op, transfer, hashes));
      slot.worker.postMessage({ op: 'batch', ops, seq } satisfies WorkerJob, transfer);
      return;
    }
    slot.running.set(seq, [job]);
    if (m.op === 'encode') {
      const plain = ownCopy(m.plain);
      slot.worker.postMessage({ op: 'encode', plain, seq } satisfies WorkerJob, [plain.buffer]);
    } else {
      const data = ownCopy(m.data);
      slot.worker.postMessage({ op: 'decode', id: ownCopy(m.id), key: ownCopy(m.key), data, seq } satisfies WorkerJob, [data.buffer]);
    }
  }

  /** Filesystem ops from the head of the queue to go with one already taken, within the batch bounds and `share`. */
  #moreFsOps(bytes: number, share: number): Job[] {
    const more: Job[] = [];
    while (more.length + 1 < Math.min(BATCH_OPS, share) && bytes < BATCH_BYTES) {
      const next = this.#queue[0];
      if (next === undefined || next.message.op !== 'fs') break;
      bytes += opBytes(next.message.item);
      more.push(this.#queue.shift()!);
    }
    return more;
  }

  /** False once closed or broken, so that small chunks are refused as large ones are. */
  #usable(): boolean {
    return this.#failure === undefined && !this.#closing;
  }

  #submit(message: JobMessage): Promise<WorkerReply | OpResult | PackResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.reject(new FlistError('the chunk pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, resolve, reject });
      this.#schedulePump();
    });
  }

  /** One chunk; callers that submit many should bound themselves or use encodeAll. */
  async encode(plain: Uint8Array): Promise<EncodedChunk> {
    if (plain.length < this.inlineBelow && this.#usable()) return this.#inline!.encode(plain);
    const reply = await this.#submit({ op: 'encode', plain });
    if ('error' in reply) throw revive(reply.error);
    if (!('encoded' in reply)) throw new FlistError('chunk worker: a decode reply to an encode job');
    const { id, key, data } = reply.encoded;
    return { id: asBuffer(id), key: asBuffer(key), data: asBuffer(data) };
  }

  /**
   * Runs one unpack op on a worker (batched with others waiting); resolves
   * with its result, typed errors included; rejects only when the pool fails.
   * Chunk data is copied, as for decode.
   */
  async unpack(op: UnpackOp): Promise<OpResult> {
    return (await this.#submit({ op: 'fs', item: op })) as OpResult;
  }

  /**
   * Encodes one piece on a worker (batched with other ops waiting), read
   * there from its file when given as one, and written to the op's dirs;
   * resolves with its result, errors included; rejects only when the pool fails.
   */
  async pack(op: PackOp): Promise<PackResult> {
    return (await this.#submit({ op: 'fs', item: op })) as PackResult;
  }

  async decode(id: Buffer, key: Buffer, data: Uint8Array): Promise<Buffer> {
    if (data.length < this.inlineBelow && this.#usable()) return this.#inline!.decode(id, key, data);
    const reply = await this.#submit({ op: 'decode', id, key, data });
    if ('error' in reply) throw revive(reply.error);
    if (!('plain' in reply)) throw new FlistError('chunk worker: an encode reply to a decode job');
    return asBuffer(reply.plain);
  }

  /** Encoded chunks in source order, with at most `capacity` chunks pulled ahead of the consumer. */
  encodeAll(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<EncodedChunk> {
    return this.#ordered(source, (plain) => this.encode(plain));
  }

  /** Plain chunks in source order, bounded as encodeAll. */
  decodeAll(source: Iterable<ChunkToDecode> | AsyncIterable<ChunkToDecode>): AsyncGenerator<Buffer> {
    return this.#ordered(source, (c) => this.decode(c.id, c.key, c.data));
  }

  async *#ordered<I, O>(source: Iterable<I> | AsyncIterable<I>, run: (item: I) => Promise<O>): AsyncGenerator<O> {
    const window: Promise<O>[] = [];
    for await (const item of source) {
      const p = run(item);
      // Rejections are rethrown in order by the yield below; this only keeps
      // one that is not reached yet from counting as unhandled.
      p.catch(() => undefined);
      window.push(p);
      if (window.length >= this.capacity) yield await window.shift()!;
    }
    while (window.length > 0) yield await window.shift()!;
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#fail(new FlistError('the chunk pool is closed'));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
