// `flist merge`: stacks flists into one, as an image's layers stack: later
// layers win, and OCI-style whiteouts in a later layer remove what earlier
// layers put there (`.wh.<name>` deletes <name>, `.wh..wh..opq` empties its
// directory of everything from earlier layers). A layer's whiteouts apply to
// the layers below it only, never to its own entries, whatever their name
// order. Whiteout entries never reach the result. A file (or link, device)
// replacing a directory drops the directory's subtree; a directory replacing
// a file starts empty; a directory over a directory takes the later one's
// metadata and keeps the earlier children.
//
// No chunk is read or copied: the result's files keep their layers' blocks,
// and its route table is the union of the layers' routes (in layer order,
// repeats dropped). Readers try every store whose range covers an id, so a
// chunk is found in whichever layer's store holds it (see docs/flist.md).
// The output is written by FlWriter (sorted inodes), so the same layers give
// the same bytes.
import { FlistError } from './errors.ts';
import { entryType, FlReader, FlWriter, type FlBlock, type FlEntry, type FlMeta, type FlRoute, type FlWriterNode } from './fl-file.ts';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/** A layer whose whiteouts cannot be applied; names the layer file and the path. */
export class MergeError extends FlistError {
  override name = 'MergeError';
}

export interface MergeOptions {
  /** Tags set on the result after the layers' own (which merge, later layers winning). */
  tags?: [string, string][];
  /** Rewrites each kept entry's metadata (the image builder fixes owners and times of its own layers). */
  meta?: (entry: FlEntry) => FlMeta;
  /** Keep whiteouts as plain entries and apply none: rewriting one layer that is merged later. */
  keepWhiteouts?: boolean;
}

export interface MergeSummary {
  layers: number;
  /** Entries in the result, the root included. */
  entries: number;
  files: number;
  /** Paths of earlier layers removed by whiteouts (an opaque directory counts its removed children). */
  whitedOut: number;
  routes: number;
}

interface Node {
  meta: FlMeta;
  target?: Buffer;
  blocks: FlBlock[];
  /** Present for directories. */
  children?: Map<string, Node>;
}

function metaOf(e: FlEntry): FlMeta {
  return { mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtime: e.mtime, ctime: e.ctime, rdev: e.rdev };
}

function parentAndName(path: string): [string, string] {
  const i = path.lastIndexOf('/');
  return [i === 0 ? '/' : path.slice(0, i), path.slice(i + 1)];
}

/** A whiteout's meaning: the name it removes, "opaque", or undefined for an ordinary entry. */
function whiteoutOf(file: string, path: string, name: string): string | undefined {
  if (!name.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (name === OPAQUE_WHITEOUT) return OPAQUE_WHITEOUT;
  const hidden = name.slice(WHITEOUT_PREFIX.length);
  if (hidden === '' || hidden.startsWith(WHITEOUT_PREFIX)) throw new MergeError(`${file}: ${path}: not a whiteout this merge knows (only .wh.<name> and ${OPAQUE_WHITEOUT}); rename it`);
  return hidden;
}

class Tree {
  readonly root: Node;
  whitedOut = 0;

  constructor(rootMeta: FlMeta) {
    this.root = { meta: rootMeta, blocks: [], children: new Map() };
  }

  find(path: string): Node | undefined {
    let node: Node | undefined = this.root;
    for (const name of path.split('/').filter((n) => n !== '')) {
      node = node.children?.get(name);
      if (!node) return undefined;
    }
    return node;
  }

  static count(node: Node): number {
    let n = 1;
    for (const c of node.children?.values() ?? []) n += Tree.count(c);
    return n;
  }

  /** Applies one layer's whiteouts to what the layers below it built. */
  whiteOut(file: string, entries: readonly FlEntry[]): void {
    for (const e of entries) {
      if (e.path === '/') continue;
      const [dirPath, name] = parentAndName(e.path);
      const hidden = whiteoutOf(file, e.path, name);
      if (hidden === undefined) continue;
      const dir = this.find(dirPath);
      if (!dir?.children) continue;
      if (hidden === OPAQUE_WHITEOUT) {
        for (const c of dir.children.values()) this.whitedOut += Tree.count(c);
        dir.children.clear();
      } else {
        const gone = dir.children.get(hidden);
        if (gone) this.whitedOut += Tree.count(gone);
        dir.children.delete(hidden);
      }
    }
  }

  /** Lays one layer's ordinary entries over the tree (parents come before their children in `entries`). */
  add(file: string, entries: readonly FlEntry[], meta: (e: FlEntry) => FlMeta, keepWhiteouts: boolean): void {
    for (const e of entries) {
      if (e.path === '/') {
        this.root.meta = meta(e);
        continue;
      }
      const [dirPath, name] = parentAndName(e.path);
      if (!keepWhiteouts && whiteoutOf(file, e.path, name) !== undefined) continue;
      const dir = this.find(dirPath);
      // The parent is this layer's own directory, added just before; a whiteout-free walk cannot miss it.
      if (!dir?.children) throw new MergeError(`${file}: ${e.path}: its parent is not a directory in the merged tree`);
      const prev = dir.children.get(name);
      if (e.type === 'dir') {
        if (prev?.children) prev.meta = meta(e);
        else dir.children.set(name, { meta: meta(e), blocks: [], children: new Map() });
      } else {
        dir.children.set(name, { meta: meta(e), target: e.targetBytes, blocks: e.blocks });
      }
    }
  }
}

function writeNode(writer: FlWriter, parent: FlWriterNode, name: string, node: Node, summary: MergeSummary): void {
  const added = writer.add(parent, name, node.meta, node.target);
  summary.entries++;
  if (node.children) {
    for (const [n, c] of node.children) writeNode(writer, added, n, c, summary);
  } else if (entryType(node.meta.mode) === 'file') {
    summary.files++;
    added.blocks.push(...node.blocks);
  }
}

/** Merges `layers` (first = bottom) into `out`. */
export function mergeFlists(layers: readonly string[], out: string, options: MergeOptions = {}): MergeSummary {
  if (layers.length === 0) throw new MergeError('give at least one flist to merge');
  const meta = options.meta ?? metaOf;
  let tree: Tree | undefined;
  const tags = new Map<string, string>();
  const routes: FlRoute[] = [];
  const routeKeys = new Set<string>();
  for (const file of layers) {
    const fl = FlReader.open(file);
    try {
      const entries = [...fl.walk()];
      tree ??= new Tree(meta(entries[0]));
      if (!options.keepWhiteouts) tree.whiteOut(file, entries);
      tree.add(file, entries, meta, options.keepWhiteouts ?? false);
      for (const [k, v] of fl.tags()) tags.set(k, v);
      for (const r of fl.routes()) {
        const key = `${r.start}-${r.end}=${r.url}`;
        if (routeKeys.has(key)) continue;
        routeKeys.add(key);
        routes.push(r);
      }
    } finally {
      fl.close();
    }
  }
  const writer = new FlWriter(tree!.root.meta);
  for (const [k, v] of [...tags, ...(options.tags ?? [])]) writer.setTag(k, v);
  // The layers' routes as written (their passwords already stripped, or kept on purpose).
  for (const r of routes) writer.addRoute(r.start, r.end, r.url, { keepPassword: true });
  const summary: MergeSummary = { layers: layers.length, entries: 1, files: 0, whitedOut: tree!.whitedOut, routes: routes.length };
  for (const [n, c] of tree!.root.children!) writeNode(writer, writer.root, n, c, summary);
  writer.write(out);
  return summary;
}
