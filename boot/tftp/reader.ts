// Read-ahead over a store entry for one transfer: the file is read in large
// chunks (a whole number of blocks each) so sending a block is a slice of
// memory, not a read per packet. Chunks behind the acknowledged block are
// dropped, and their buffers are read into again: a fresh 1 MiB buffer per
// chunk costs page faults and, over a long file, old-generation collections.
// The next chunk is fetched while the current one is being sent.
import type { StoreEntry } from '../store.ts';

const TARGET_CHUNK_BYTES = 1024 * 1024;
/** Released chunk buffers kept for reuse: the current and the read-ahead chunk are all a transfer holds. */
const MAX_SPARE = 2;

/** Bytes per chunk: a whole number of blocks, at least two windows, about 1 MiB. */
export function chunkBytes(blksize: number, windowsize: number): number {
  return Math.max(windowsize * 2, Math.ceil(TARGET_CHUNK_BYTES / blksize)) * blksize;
}

/** Reads `length` bytes at `base` into the start of `buf`; resolves the bytes read (fewer at an early end of file). */
export async function readFully(entry: StoreEntry, buf: Buffer, base: number, length: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await entry.readInto(buf.subarray(done, length), base + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export class ChunkReader {
  readonly chunkSize: number;
  private readonly entry: StoreEntry;
  private readonly chunks = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<void>>();
  private readonly spare: Buffer[] = [];
  private failure: Error | undefined;
  private releasedBelow = 0;

  constructor(entry: StoreEntry, blksize: number, windowsize: number) {
    this.entry = entry;
    this.chunkSize = chunkBytes(blksize, windowsize);
  }

  /** The first read error, if any; later reads are not attempted. */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Copies bytes [start, end) into `target` at `at` if they are in memory;
   * returns false when the chunk still has to be loaded. A block never
   * straddles two chunks (the chunk size is a multiple of the block size),
   * and copying straight from the chunk avoids a Buffer object per packet.
   */
  copyTo(target: Buffer, at: number, start: number, end: number): boolean {
    // The final block is empty when the size is a multiple of the block size.
    if (start >= end) return true;
    const index = Math.floor(start / this.chunkSize);
    const chunk = this.chunks.get(index);
    if (!chunk) return false;
    const base = index * this.chunkSize;
    chunk.copy(target, at, start - base, end - base);
    return true;
  }

  /** Loads the chunk holding byte `offset` (no-op past the end of the file). */
  load(offset: number): Promise<void> {
    const index = Math.floor(offset / this.chunkSize);
    if (this.chunks.has(index) || this.failure) return Promise.resolve();
    const base = index * this.chunkSize;
    if (base >= this.entry.size) return Promise.resolve();
    let pending = this.loading.get(index);
    if (!pending) {
      const length = Math.min(this.chunkSize, this.entry.size - base);
      // A chunk buffer is always chunkSize long; the last chunk uses its start.
      const buf = this.spare.pop() ?? Buffer.allocUnsafe(this.chunkSize);
      pending = readFully(this.entry, buf, base, length).then(
        (got) => {
          this.loading.delete(index);
          // A short read means the file shrank since its size was announced.
          if (got < length) this.failure = new Error(`short read at ${base}: ${got} of ${length} bytes`);
          else this.chunks.set(index, buf);
        },
        (e: unknown) => {
          this.loading.delete(index);
          this.failure = e instanceof Error ? e : new Error(String(e));
        },
      );
      this.loading.set(index, pending);
    }
    return pending;
  }

  /** Starts loading the chunk after the one holding `offset` once sending is past its middle. */
  readAhead(offset: number): void {
    const within = offset % this.chunkSize;
    if (within >= this.chunkSize / 2) void this.load(offset - within + this.chunkSize);
  }

  /** Drops chunks that end at or before `offset`: they will not be sent again. */
  release(offset: number): void {
    const keepFrom = Math.floor(offset / this.chunkSize);
    if (keepFrom === this.releasedBelow) return;
    this.releasedBelow = keepFrom;
    for (const [index, buf] of this.chunks) {
      if (index >= keepFrom) continue;
      this.chunks.delete(index);
      if (this.spare.length < MAX_SPARE) this.spare.push(buf);
    }
  }
}
