// Read-ahead over a store entry for one transfer: the file is read in large
// chunks (a whole number of blocks each) so sending a block is a slice of
// memory, not a read per packet. Chunks behind the acknowledged block are
// dropped; the next chunk is fetched while the current one is being sent.
import type { StoreEntry } from '../store.ts';

const TARGET_CHUNK_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export class ChunkReader {
  readonly chunkSize: number;
  private readonly entry: StoreEntry;
  private readonly chunks = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<void>>();
  private failure: Error | undefined;
  private releasedBelow = 0;

  constructor(entry: StoreEntry, blksize: number, windowsize: number) {
    this.entry = entry;
    const blocks = Math.max(windowsize * 2, Math.ceil(TARGET_CHUNK_BYTES / blksize));
    this.chunkSize = blocks * blksize;
  }

  /** The first read error, if any; later reads are not attempted. */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Bytes [start, end) if already in memory. A block never straddles two
   * chunks because the chunk size is a multiple of the block size.
   */
  slice(start: number, end: number): Buffer | undefined {
    // The final block is empty when the size is a multiple of the block size.
    if (start >= end) return EMPTY;
    const index = Math.floor(start / this.chunkSize);
    const chunk = this.chunks.get(index);
    if (!chunk) return undefined;
    const base = index * this.chunkSize;
    return chunk.subarray(start - base, end - base);
  }

  /** Loads the chunk holding byte `offset` (no-op past the end of the file). */
  load(offset: number): Promise<void> {
    const index = Math.floor(offset / this.chunkSize);
    if (this.chunks.has(index) || this.failure) return Promise.resolve();
    const base = index * this.chunkSize;
    if (base >= this.entry.size) return Promise.resolve();
    let pending = this.loading.get(index);
    if (!pending) {
      pending = this.entry.read(base, Math.min(this.chunkSize, this.entry.size - base)).then(
        (buf) => {
          this.loading.delete(index);
          this.chunks.set(index, buf);
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
    for (const index of this.chunks.keys()) if (index < keepFrom) this.chunks.delete(index);
  }
}
