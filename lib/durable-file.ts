// Small files that must survive a power cut once written, asynchronously:
// a temporary file, fsync'd, renamed over the old one, then the folder
// fsync'd (a plain write can leave an empty file after a crash on ext4 or
// btrfs). zdb/engine/durable-write.ts is the synchronous twin the 0-db
// engine uses between commands.
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function writeFileDurably(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    // a temporary file left by a crash would keep its own mode: start afresh so `mode` holds
    await rm(tmp, { force: true });
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    // a full disk must not also leave a half-written temporary file behind
    await rm(tmp, { force: true });
    throw e;
  }
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
