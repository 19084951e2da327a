// Files that appear whole or not at all under their name: written to a
// unique temporary name next to it, then renamed (atomic within a
// filesystem). A failed write removes its temporary file; a crash leaves
// at most a *.tmp-* file, never a short chunk under its id.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

async function writeNew(file: string, data: Buffer): Promise<void> {
  try {
    await writeFile(file, data, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') await rm(file, { force: true });
    throw e;
  }
}

export async function writeFileAtomic(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await writeNew(tmp, data);
  } catch (e) {
    // the first chunk of a prefix: its folder does not exist yet
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(path.dirname(file), { recursive: true });
    await writeNew(tmp, data);
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** The file's bytes, or undefined when it (or its folder) does not exist. */
export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Whether a regular file is there; other errors than "no such file" are thrown. */
export async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
