// Small files that must survive a power cut once written (the namespace
// descriptor): a temporary file, fsync'd, renamed over the old one, then the
// folder fsync'd. A plain write sits in the page cache: on ext4 (delayed
// allocation) a power cut leaves the new file empty, and a namespace with an
// empty descriptor cannot be opened, acknowledged keys and all.
import fs from 'node:fs';
import path from 'node:path';

export function writeFileDurably(file: string, data: Uint8Array, mode: number): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}
