// A store whose entries also have readInto(buf, position), the capability
// boot/http/artifacts.ts uses to reuse buffers. It stands in for the method
// proposed for boot/store.ts until that file has it: the wrapped store still
// resolves and checks every path; only the reads go to the file directly.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ImageStore, StoreEntry } from '../../boot/store.ts';
import type { ReadIntoEntry } from '../../boot/http/artifacts.ts';

/** `inner` must be a store with one directory mounted at prefix "" on `dir`. */
export function readIntoStore(inner: ImageStore, dir: string): ImageStore {
  return {
    async open(virtualPath: string): Promise<StoreEntry> {
      const entry = await inner.open(virtualPath);
      let fh: FileHandle | undefined;
      const withReadInto: StoreEntry & ReadIntoEntry = {
        ...entry,
        async readInto(buf, position) {
          fh ??= await open(path.join(dir, entry.path), 'r');
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, entry.size - position), position);
          return bytesRead;
        },
        async close() {
          await fh?.close();
          fh = undefined;
          await entry.close();
        },
      };
      return withReadInto;
    },
  };
}
