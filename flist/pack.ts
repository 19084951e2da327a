// `flist pack`: chooses the source by what the path is (a directory, or a
// file's first bytes: a .deb's ar magic, compressed data, a tar header) and
// hands it to its module in sources/; the shared tree -> chunks + .fl part
// is tree-packer.ts.
import { open, stat } from 'node:fs/promises';
import { packDeb } from './sources/deb.ts';
import { packDir } from './sources/dir.ts';
import { compressionOf, headHex, isAr, isTarHeader, TAR_BLOCK } from './sources/sniff.ts';
import { packTar } from './sources/tar.ts';
import { TreeError } from './tree-errors.ts';
import type { PackOptions, PackSummary } from './tree-packer.ts';

export { packDir } from './sources/dir.ts';
export type { InputProgress, PackOptions, PackSummary } from './tree-packer.ts';

export type SourceKind = 'dir' | 'tar' | 'deb';

/** What `src` is, told by content, not by name; refuses anything else in one line. */
export async function sourceKind(src: string): Promise<SourceKind> {
  const st = await stat(src).catch((e: NodeJS.ErrnoException) => {
    throw new TreeError(`${src}: cannot read the source: ${e.code ?? e.message}`);
  });
  if (st.isDirectory()) return 'dir';
  if (!st.isFile()) throw new TreeError(`${src}: not a directory or a regular file`);
  const fh = await open(src, 'r');
  const head = Buffer.alloc(TAR_BLOCK);
  let got: number;
  try {
    got = (await fh.read(head, 0, TAR_BLOCK, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  const h = head.subarray(0, got);
  if (got === 0) throw new TreeError(`${src}: an empty file, not a tar or a .deb`);
  if (isAr(h)) return 'deb';
  if (compressionOf(h) !== 'none' || isTarHeader(h)) return 'tar';
  throw new TreeError(`${src}: unknown format (starts with ${headHex(h)}); give a directory, a tar (.tar, .tar.gz, .tar.xz, .tar.zst, .tar.bz2) or a .deb`);
}

/** Packs a directory, a tarball or a .deb into chunks and a .fl. */
export async function packSource(src: string, outFile: string, opts: PackOptions): Promise<PackSummary> {
  const kind = await sourceKind(src);
  if (kind === 'dir') return packDir(src, outFile, opts);
  if (kind === 'deb') return packDeb(src, outFile, opts);
  return packTar(src, outFile, opts);
}
