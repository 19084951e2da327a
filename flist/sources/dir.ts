// `flist pack` from a directory: walks the tree (names in byte order, so the
// result does not depend on readdir's order) and gives each regular file to
// the tree packer by path: the chunk workers read its 512 KiB pieces
// themselves, many at once. Hard links share their first name's blocks (the
// file is read once).
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import { entryType, type FlMeta, type FlWriterNode } from '../fl-file.ts';
import { TreeError } from '../tree-errors.ts';
import { TreePacker, type PackOptions, type PackSummary } from '../tree-packer.ts';

function meta(st: Stats, size: number): FlMeta {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size, mtime: Math.floor(st.mtimeMs / 1000), ctime: Math.floor(st.ctimeMs / 1000), rdev: st.rdev };
}

export async function packDir(dir: string, outFile: string, opts: PackOptions): Promise<PackSummary> {
  const rootStat = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
    throw new TreeError(`${dir}: cannot read the source: ${e.code ?? e.message}`);
  });
  if (!rootStat.isDirectory()) throw new TreeError(`${dir}: not a directory`);
  const packer = new TreePacker(meta(rootStat, 0), opts);
  const firstNames = new Map<string, FlWriterNode>();

  const walk = async (src: string, parent: FlWriterNode): Promise<void> => {
    const names = (await readdir(src)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    // a folder's entries are looked at all at once: one at a time, the walk waited on each round trip
    // through libuv's pool while the chunk workers ran out of pieces
    const stats = await Promise.all(names.map((name) => lstat(path.join(src, name))));
    for (const [i, name] of names.entries()) {
      const full = path.join(src, name);
      const st = stats[i];
      const type = entryType(st.mode);
      if (type === 'dir') {
        await walk(full, packer.add(parent, name, meta(st, 0)));
      } else if (type === 'symlink') {
        const target = await readlink(full, { encoding: 'buffer' });
        packer.add(parent, name, meta(st, target.length), target);
      } else if (type === 'file') {
        const node = packer.add(parent, name, meta(st, st.size));
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? firstNames.get(inode) : undefined;
        if (first) {
          packer.linkTo(node, first);
          continue;
        }
        if (st.nlink > 1) firstNames.set(inode, node);
        await packer.addFileAt(node, full, st.size, full);
      } else if (type === 'unknown') {
        throw new TreeError(`${full}: unknown file type (mode 0o${st.mode.toString(8)})`);
      } else {
        packer.add(parent, name, meta(st, 0));
      }
    }
  };
  try {
    await walk(dir, packer.root);
  } catch (e) {
    // pieces and uploads already started finish (or fail) before the error goes up
    await packer.settle();
    throw e;
  }
  return packer.finish(outFile);
}
