// `flist pack` from a tar (plain, gzip, xz, zstd or bzip2; told by magic
// bytes) read as a stream through tar-stream: entries become tree nodes,
// regular files are cut into 512 KiB pieces as they stream by (never held
// whole). Paths are normalised ("./", "/" and "a/.." dropped); an entry that
// would leave the root is refused. Directories a path implies but the archive
// lacks are made 0755 root:root with mtime 0 (deterministic). A hard link
// gets its target's metadata and blocks (rfs has no link table). A path named
// twice: the later entry wins, as with tar -x.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { CHUNK_SIZE } from '../chunk.ts';
import { FlistError, FlWriteError } from '../errors.ts';
import { entryType, type FlMeta, type FlWriterNode } from '../fl-file.ts';
import { TreeError } from '../tree-errors.ts';
import { TreePacker, type PackOptions, type PackSummary } from '../tree-packer.ts';
import { decompress, DecompressError } from './decompress.ts';
import { compressionOf } from './sniff.ts';

const IMPLIED_DIR: FlMeta = { mode: 0o040755, uid: 0, gid: 0, size: 0, mtime: 0, ctime: 0, rdev: 0 };

const TYPE_BITS: Record<string, number> = {
  file: 0o100000,
  'contiguous-file': 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/** A part of a file: the whole file, or one member of an ar archive. */
export interface FileRange {
  file: string;
  /** First byte; default 0. */
  start?: number;
  /** Bytes; default to the end of the file. */
  size?: number;
}

/** glibc's makedev(): the st_rdev a device node with this major and minor has. */
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + Math.floor(minor / 0x100) * 0x100000 + Math.floor(major / 0x1000) * 2 ** 44;
}

/** The names of a tar path inside the root; throws when it would leave the root. */
export function pathParts(name: string): string[] | undefined {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.length === 0) return undefined;
    else out.pop();
  }
  return out;
}

function headerMeta(h: tar.Header, size: number, rdev = 0): FlMeta {
  const pax = (h as { pax?: Record<string, string> | null }).pax ?? undefined;
  const num = (key: string, fallback: number): number => (pax?.[key] !== undefined && /^\d+(\.\d*)?$/.test(pax[key]) ? Math.floor(Number(pax[key])) : fallback);
  const mtime = num('mtime', Math.floor((h.mtime?.getTime() ?? 0) / 1000));
  return { mode: (TYPE_BITS[h.type ?? 'file'] ?? 0) | ((h.mode ?? 0) & 0o7777), uid: num('uid', h.uid ?? 0), gid: num('gid', h.gid ?? 0), size, mtime, ctime: mtime, rdev };
}

/** A tar entry's data as pieces of CHUNK_SIZE bytes (the last one shorter). */
async function* pieces(entry: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let left = size;
  let buf = Buffer.allocUnsafe(Math.min(CHUNK_SIZE, left));
  let fill = 0;
  for await (const data of entry) {
    for (let off = 0; off < data.length; ) {
      if (buf.length === 0) throw new Error(`more data than the ${size} bytes of the header`);
      const n = data.copy(buf, fill, off);
      fill += n;
      off += n;
      if (fill === buf.length) {
        yield buf;
        left -= fill;
        buf = Buffer.allocUnsafe(Math.min(CHUNK_SIZE, left));
        fill = 0;
      }
    }
  }
  if (left > 0) throw new Error('Unexpected end of data');
}

/** Reads a tar stream's entries into the packer. `label` names the archive in refusals. */
export async function readTar(input: Readable, label: string, packer: TreePacker): Promise<void> {
  // v7 tars have no "ustar" magic; sniff.ts accepts them by their header checksum
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  const refuse = (name: string, why: string) => new TreeError(`${label}: ${JSON.stringify(name)}: ${why}`);

  const lookup = (parts: string[]): FlWriterNode | undefined => {
    let node: FlWriterNode | undefined = packer.root;
    for (const part of parts) node = node?.children.get(part);
    return node;
  };
  const parentDir = (name: string, parts: string[]): FlWriterNode => {
    let node = packer.root;
    for (const part of parts.slice(0, -1)) {
      let next = node.children.get(part);
      if (next === undefined) next = packer.add(node, part, { ...IMPLIED_DIR });
      else if (entryType(next.meta.mode) !== 'dir') throw refuse(name, `${JSON.stringify(part)} is not a directory in the archive`);
      node = next;
    }
    return node;
  };

  for await (const entry of extract) {
    const h = entry.header;
    const name = h.name;
    const parts = pathParts(name);
    if (parts === undefined) throw refuse(name, 'leaves the root (".." above the top); refusing the archive');
    const type = h.type ?? 'file';
    if (TYPE_BITS[type] === undefined && type !== 'link') throw refuse(name, `unsupported tar entry type ${JSON.stringify(type)}`);
    if (parts.length === 0) {
      if (type !== 'directory') throw refuse(name, `the root must be a directory, not a ${type}`);
      Object.assign(packer.root.meta, headerMeta(h, 0));
      entry.resume();
      continue;
    }
    const parent = parentDir(name, parts);
    const base = parts[parts.length - 1];
    const existing = parent.children.get(base);
    if (type === 'directory' && existing !== undefined && entryType(existing.meta.mode) === 'dir') {
      Object.assign(existing.meta, headerMeta(h, 0));
      entry.resume();
      continue;
    }
    if (existing !== undefined) {
      if (existing.children.size > 0) throw refuse(name, 'replaces a directory that has entries');
      packer.remove(parent, base);
    }
    try {
      if (type === 'file' || type === 'contiguous-file') {
        const size = h.size ?? 0;
        const node = packer.add(parent, base, headerMeta(h, size));
        await packer.addFile(node, pieces(entry as AsyncIterable<Buffer>, size), `${label}: ${name}`);
      } else if (type === 'link') {
        const targetParts = pathParts(h.linkname ?? '');
        const first = targetParts === undefined ? undefined : lookup(targetParts);
        if (first === undefined || targetParts!.length === 0) throw refuse(name, `hard link to ${JSON.stringify(h.linkname)}, which is not earlier in the archive`);
        if (entryType(first.meta.mode) === 'dir') throw refuse(name, `hard link to the directory ${JSON.stringify(h.linkname)}`);
        const node = packer.add(parent, base, { ...first.meta }, first.target);
        if (entryType(first.meta.mode) === 'file') packer.linkTo(node, first);
        entry.resume();
      } else if (type === 'symlink') {
        const target = Buffer.from(h.linkname ?? '');
        packer.add(parent, base, headerMeta(h, target.length), target);
        entry.resume();
      } else {
        const rdev = type === 'character-device' || type === 'block-device' ? makedev(h.devmajor ?? 0, h.devminor ?? 0) : 0;
        packer.add(parent, base, headerMeta(h, 0, rdev));
        entry.resume();
      }
    } catch (e) {
      if (e instanceof FlWriteError) throw refuse(name, e.message);
      if (e instanceof FlistError) throw e;
      throw new EntryReadError(name, e as Error);
    }
  }
}

/** A failure of the stream while an entry was read: explain() says which entry. */
class EntryReadError extends Error {
  readonly entry: string;
  readonly cause: Error;
  constructor(entry: string, cause: Error) {
    super(cause.message);
    this.entry = entry;
    this.cause = cause;
  }
}

/** The refusal for a failure while reading: names the archive and says what broke. */
function explain(e: unknown, label: string): Error {
  if (e instanceof FlistError) return e;
  const msg = (e as Error).message.split('\n')[0];
  if (e instanceof DecompressError) return new TreeError(`${label}: ${msg}`);
  const inside = e instanceof EntryReadError ? JSON.stringify(e.entry) : 'an entry or its header';
  if (endOfInput(e)) return new TreeError(`${label}: truncated tar (the archive ends inside ${inside})`);
  if (/^Invalid tar header\./.test(msg)) return new TreeError(`${label}: not a tar archive, or a damaged one (a header's checksum does not add up)`);
  if (/^Invalid (tar )?header/.test(msg)) return new TreeError(`${label}: not a tar archive, or a damaged one (${msg})`);
  return new TreeError(`${label}: ${msg}`);
}

const endOfInput = (e: unknown) => (e as Error).message === 'Unexpected end of data';

/** Packs the tar in `range` (compressed or not) into the packer, then writes the .fl. */
export async function packTarRange(range: FileRange, label: string, rootMeta: FlMeta, outFile: string, opts: PackOptions): Promise<PackSummary> {
  const start = range.start ?? 0;
  const fh = await open(range.file, 'r');
  let total: number;
  const head = Buffer.alloc(8);
  try {
    total = range.size ?? (await fh.stat()).size - start;
    await fh.read(head, 0, Math.min(8, total), start);
  } finally {
    await fh.close();
  }
  const raw = createReadStream(range.file, { start, end: start + total - 1, highWaterMark: 1 << 20 });
  const decoded = decompress(raw, compressionOf(head.subarray(0, Math.min(8, total))));
  const packer = new TreePacker({ ...rootMeta }, opts);
  packer.input = () => ({ done: raw.bytesRead, total });
  try {
    try {
      await readTar(decoded.stream, label, packer);
    } catch (e) {
      // a decompressor that failed says why better than the tar reader does
      // (when the input ended early, wait for it to tell)
      throw decoded.failure() ?? (endOfInput(e) ? await decoded.done.then(() => e, (d: unknown) => d) : e);
    }
    await decoded.done;
  } catch (e) {
    decoded.close();
    await packer.settle();
    throw explain(e, label);
  }
  return packer.finish(outFile);
}

export function packTar(file: string, outFile: string, opts: PackOptions): Promise<PackSummary> {
  return packTarRange({ file }, file, IMPLIED_DIR, outFile, opts);
}
