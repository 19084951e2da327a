// The filesystem half of `flist unpack`, run on the chunk pool's worker
// threads (flist/chunk-worker.ts) as plain synchronous calls: there a call
// is one system call, where the event loop's fs/promises pays a round trip
// through libuv's thread pool for each. A chunk comes either as bytes or as
// the path of a local file holding it (a dir store, the cache): the worker
// reads it itself, so its bytes never cross threads. A file is written under
// a temporary name, its owner, mode and times set on the open descriptor,
// then renamed: no partial file ever has its final name.
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync, mkdirSync, lstatSync, openSync, readSync, renameSync, rmSync, symlinkSync, chmodSync, utimesSync, writeSync } from 'node:fs';
import { CHUNK_SIZE, type ChunkCodec } from './chunk.ts';

export interface ChunkSource {
  id: Uint8Array;
  key: Uint8Array;
  /** a local file holding the chunk's stored bytes; when it is gone, the op answers `missing` */
  path?: string;
  data?: Uint8Array;
}

export interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** set the owner too (only root may) */
  chown: boolean;
}

export type UnpackOp =
  /**
   * Decodes (checks) the chunks; with `file`, writes them (when `expect` is
   * given, only if they decode to that many bytes: a chunk written at an
   * offset computed in advance) at `offset` (creating it when `create`), then with `finish` sets its metadata and renames it.
   * checkKey false skips hashing the plain bytes against their key (flist/chunk.ts says why unpack may); default true. */
  | { op: 'file'; chunks: ChunkSource[]; file?: string; create?: boolean; offset?: number; expect?: number; finish?: EntryMeta & { final: string }; checkKey?: boolean }
  /** Folders in order (parents first); one already there is kept, anything else in its place is an error. */
  | { op: 'mkdirs'; paths: string[] }
  | { op: 'symlink'; path: string; target: Uint8Array; meta: EntryMeta }
  /** Owner, mode and times of existing entries, in order (folders deepest first). */
  | { op: 'metas'; list: { path: string; meta: EntryMeta }[] };

export type OpResult =
  /** bytes: the plain length of the chunks */
  | { ok: true; bytes: number }
  /** the chunks decode to `bytes`, not to `expect`: nothing was written */
  | { uneven: number }
  /** chunk `missing` of the op had no local file: the caller fetches it and sends the op again */
  | { missing: number }
  /** `chunk`: the index of the chunk that failed to decode; absent for a filesystem failure */
  | { error: { name: string; message: string; id?: string }; chunk?: number };

class ChunkFailure {
  readonly index: number;
  readonly cause: unknown;
  constructor(index: number, cause: unknown) {
    this.index = index;
    this.cause = cause;
  }
}

/** Runs unpack ops with one reusable read buffer (a stored chunk is at most ~600 KiB: Snappy's bound of 512 KiB plus the tag). */
export class UnpackOps {
  readonly #codec: ChunkCodec;
  #buf = Buffer.allocUnsafe(1 << 20);
  /** where chunk i of an op is decoded (native codec): the same memory every op, no fresh pages per chunk */
  readonly #plainBufs: Buffer[] = [];
  /** read once: a new file's mode is the open mode less these bits */
  readonly #umask = process.umask();

  constructor(codec: ChunkCodec) {
    this.#codec = codec;
  }

  run(op: UnpackOp): OpResult {
    try {
      switch (op.op) {
        case 'file':
          return this.#file(op);
        case 'mkdirs':
          for (const p of op.paths) mkdirOrKeep(p);
          return { ok: true, bytes: 0 };
        case 'symlink':
          rmSync(op.path, { force: true });
          symlinkSync(Buffer.from(op.target.buffer, op.target.byteOffset, op.target.byteLength), op.path);
          if (op.meta.chown) lchownSync(op.path, op.meta.uid, op.meta.gid);
          lutimesSync(op.path, op.meta.mtime, op.meta.mtime);
          return { ok: true, bytes: 0 };
        case 'metas':
          for (const { path, meta } of op.list) {
            // owner before mode: chown clears set-uid bits
            if (meta.chown) lchownSync(path, meta.uid, meta.gid);
            chmodSync(path, meta.mode & 0o7777);
            utimesSync(path, meta.mtime, meta.mtime);
          }
          return { ok: true, bytes: 0 };
      }
    } catch (e) {
      if (e instanceof ChunkFailure) return { error: errorFields(e.cause), chunk: e.index };
      return { error: errorFields(e) };
    }
  }

  /** The stored bytes of a local chunk file, or undefined when it is not there. */
  #readLocal(path: string): Uint8Array | undefined {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      let n = 0;
      for (;;) {
        if (n === this.#buf.length) {
          const bigger = Buffer.allocUnsafe(this.#buf.length * 2);
          this.#buf.copy(bigger);
          this.#buf = bigger;
        }
        const room = this.#buf.length - n;
        const got = readSync(fd, this.#buf, n, room, null);
        n += got;
        // a regular file reads short only at its end, which saves the read that would return 0; were it
        // ever short elsewhere, the id's hash check refuses the chunk
        if (got < room) return this.#buf.subarray(0, n);
      }
    } finally {
      closeSync(fd);
    }
  }

  #file(op: Extract<UnpackOp, { op: 'file' }>): OpResult {
    const plains: Buffer[] = [];
    let bytes = 0;
    for (let i = 0; i < op.chunks.length; i++) {
      const c = op.chunks[i];
      const data = c.data ?? (c.path === undefined ? undefined : this.#readLocal(c.path));
      if (data === undefined) return { missing: i };
      try {
        const scratch = (this.#plainBufs[i] ??= Buffer.allocUnsafeSlow(CHUNK_SIZE));
        plains.push(this.#codec.decodeTo(asBuffer(c.id), asBuffer(c.key), data, scratch, op.checkKey ?? true));
      } catch (e) {
        throw new ChunkFailure(i, e);
      }
      bytes += plains[i].length;
    }
    if (op.expect !== undefined && bytes !== op.expect) return { uneven: bytes };
    if (op.file === undefined) return { ok: true, bytes };
    // A file made and finished by this one op is created with its mode when the umask leaves it whole
    // and it has no set-id bits (the owner change below would clear them): no fchmod then.
    const perm = op.finish ? op.finish.mode & 0o7777 : 0;
    const modeAtOpen = op.create && op.finish !== undefined && (perm & 0o7000) === 0 && (perm & this.#umask) === 0;
    const fd = openSync(op.file, op.create ? constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL : constants.O_WRONLY, modeAtOpen ? perm : 0o600);
    let open = true;
    try {
      let pos = op.offset ?? 0;
      for (const p of plains) {
        for (let done = 0; done < p.length; ) done += writeSync(fd, p, done, p.length - done, pos + done);
        pos += p.length;
      }
      if (op.finish) {
        const m = op.finish;
        if (m.chown) fchownSync(fd, m.uid, m.gid);
        if (!modeAtOpen) fchmodSync(fd, m.mode & 0o7777);
        futimesSync(fd, m.mtime, m.mtime);
      }
      open = false;
      closeSync(fd);
      if (op.finish) renameSync(op.file, op.finish.final);
    } catch (e) {
      // never closed twice: another thread may have the number by now
      if (open) {
        try {
          closeSync(fd);
        } catch {
          // the first error is the one to report
        }
      }
      // a file this op made is removed; the caller removes a file written by several ops
      if (op.create || op.finish) rmSync(op.file, { force: true });
      throw e;
    }
    return { ok: true, bytes };
  }
}

function mkdirOrKeep(p: string): void {
  try {
    mkdirSync(p, 0o700);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !lstatSync(p).isDirectory()) throw e;
  }
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export function errorFields(e: unknown): { name: string; message: string; id?: string } {
  const err = e as Error & { id?: string };
  return { name: err.name, message: err.message, id: err.id };
}
