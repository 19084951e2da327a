// Chunks kept in memory after they were fetched from a store that is not a
// folder (zdb, http), so a crowd of nodes unpacking the same layer costs the
// store one fetch per chunk. Bounded in bytes; the least recently used go
// first. Chunks never change under their id, so nothing here goes stale.
import { RecencyMap } from '../recency-map.ts';

export class ChunkLru {
  private readonly chunks = new RecencyMap<{ hex: string; data: Buffer }>();
  private readonly maxBytes: number;
  private bytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get(hex: string): Buffer | undefined {
    return this.chunks.use(hex)?.data;
  }

  add(hex: string, data: Buffer): void {
    if (data.length > this.maxBytes || this.chunks.has(hex)) return;
    while (this.bytes + data.length > this.maxBytes) {
      const oldest = this.chunks.oldest()!;
      this.chunks.delete(oldest.hex);
      this.bytes -= oldest.data.length;
    }
    this.chunks.set(hex, { hex, data });
    this.bytes += data.length;
  }
}
