// Reads the regions the signature reader looks at, from a block device or
// an image file. The size comes from the caller (sysfs for a disk): stat
// says 0 for a block device and Node has no lseek to find its end.
import { open } from 'node:fs/promises';
import { PROBE_BYTES, type ProbeRegions } from './signatures.ts';

async function readFully(fh: import('node:fs/promises').FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`short read at byte ${position + done}: the device is smaller than its stated size`);
    done += bytesRead;
  }
  return buf;
}

export async function readProbeRegions(path: string, size: number): Promise<ProbeRegions> {
  const fh = await open(path, 'r');
  try {
    const n = Math.min(size, PROBE_BYTES);
    const head = await readFully(fh, n, 0);
    const tail = size <= PROBE_BYTES ? head : await readFully(fh, n, size - n);
    return { head, tail, size };
  } finally {
    await fh.close();
  }
}
