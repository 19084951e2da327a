// The `.fl` flist file of rfs ("FungiList"): an SQLite database that
// describes a tree (inodes, symlink targets, the blocks of each file, tags and
// chunk-store routes). Read and written with Node's built-in node:sqlite, so
// no native dependency. The schema text is rfs's, byte for byte, so that the
// files we write are indistinguishable from rfs's to any reader.
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { BadBlockError, BadTreeError, FlFileError, FlWriteError, ForeignSchemaError, NotSqliteError, RouteError, TruncatedFlError } from './errors.ts';

/** rfs's schema.sql; SQLite keeps each CREATE text in sqlite_master as written. */
const SCHEMA = [
  `CREATE TABLE inode (
    ino INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER,
    name VARCHAR(255),
    size INTEGER,
    uid INTEGER,
    gid INTEGER,
    mode INTEGER,
    rdev INTEGER,
    ctime INTEGER,
    mtime INTEGER
)`,
  'CREATE INDEX parents ON inode (parent)',
  'CREATE INDEX names ON inode (name)',
  `CREATE TABLE extra (
    ino INTEGER PRIMARY KEY,
    data VARCHAR(4096)
)`,
  `CREATE TABLE block (
    ino INTEGER,
    id VARCHAR(32),
    key VARCHAR(32)
)`,
  'CREATE INDEX block_ino ON block (ino)',
  `CREATE TABLE tag (
    key VARCHAR(10) PRIMARY KEY,
    value VARCHAR(255)
)`,
  `CREATE TABLE route (
    start integer, -- one byte hash prefix
    end integer, -- one byte hash prefix
    url VARCHAR(2048)
)`,
];

/** The columns a reader needs, per table; extra columns are tolerated. */
const REQUIRED: Record<string, string[]> = {
  inode: ['ino', 'parent', 'name', 'size', 'uid', 'gid', 'mode', 'rdev', 'ctime', 'mtime'],
  extra: ['ino', 'data'],
  block: ['ino', 'id', 'key'],
  tag: ['key', 'value'],
  route: ['start', 'end', 'url'],
};

export const ROOT_INO = 1;
export const HASH_LENGTH = 32;

const S_IFMT = 0o170000;
const FILE_TYPES: Record<number, FlEntryType> = {
  0o040000: 'dir',
  0o100000: 'file',
  0o120000: 'symlink',
  0o010000: 'fifo',
  0o020000: 'char',
  0o060000: 'block',
  0o140000: 'socket',
};

export type FlEntryType = 'dir' | 'file' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket' | 'unknown';

export interface FlBlock {
  id: Buffer;
  key: Buffer;
}

/** Metadata of an inode as rfs stores it: mode is the full st_mode (type bits included); times in seconds. */
export interface FlMeta {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  ctime: number;
  rdev: number;
}

export interface FlEntry extends FlMeta {
  ino: number;
  parent: number;
  /** Absolute path inside the flist; the root is "/". */
  path: string;
  name: string;
  type: FlEntryType;
  /** The `extra` row: a symlink's target, as UTF-8 text... */
  target?: string;
  /** ...and as the bytes stored (rfs keeps a BLOB; a Linux target need not be UTF-8). */
  targetBytes?: Buffer;
  blocks: FlBlock[];
}

/** Chunk-store route: ids whose first byte is in start..end (inclusive) go to url. */
export interface FlRoute {
  start: number;
  end: number;
  url: string;
}

export function entryType(mode: number): FlEntryType {
  return FILE_TYPES[mode & S_IFMT] ?? 'unknown';
}

/**
 * Checks the SQLite header before SQLite sees the file: SQLite reports a cut
 * file only when a query reaches a missing page, and a foreign file as a bare
 * "file is not a database", neither naming the file.
 */
function checkHeader(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new FlFileError(file, `cannot open: ${(e as Error).message.split(',')[0]}`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(100);
    const got = readSync(fd, head, 0, 100, 0);
    const magic = Buffer.from('SQLite format 3\0');
    const seen = head.subarray(0, Math.min(got, magic.length));
    if (!seen.equals(magic.subarray(0, seen.length))) throw new NotSqliteError(file);
    if (got < 100) throw new TruncatedFlError(file, got === 0 ? 'the file is empty' : `${got} bytes, shorter than the 100-byte SQLite header`);
    const rawPageSize = head.readUInt16BE(16);
    const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) throw new TruncatedFlError(file, `page size ${rawPageSize} in the header`);
    const pages = head.readUInt32BE(28);
    // The page count is valid only when written by SQLite >= 3.7.0 (version-valid-for == change counter).
    const countValid = pages > 0 && head.readUInt32BE(24) === head.readUInt32BE(92);
    if (countValid && size < pages * pageSize) throw new TruncatedFlError(file, `${size} bytes, the header says ${pages} pages of ${pageSize}`);
    if (size % pageSize !== 0) throw new TruncatedFlError(file, `${size} bytes, not a whole number of ${pageSize}-byte pages`);
  } finally {
    closeSync(fd);
  }
}

function asBuffer(v: unknown): Buffer | undefined {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : undefined;
}

interface InodeRow {
  ino: number;
  parent: number;
  name: string;
  size: number;
  uid: number;
  gid: number;
  mode: number;
  rdev: number;
  ctime: number;
  mtime: number;
  data: Uint8Array | string | null;
}

interface BlockRow {
  ino?: number;
  id: unknown;
  key: unknown;
}

/** The inode columns, in the order the walk selects them (a foreign .fl may have more, in any order). */
const INODE_COLUMNS = ['ino', 'parent', 'name', 'size', 'uid', 'gid', 'mode', 'rdev', 'ctime', 'mtime'] as const;

/** All rows of a query, each as an array of its columns. */
function arrayRows(db: DatabaseSync, sql: string): unknown[][] {
  const stmt = db.prepare(sql);
  stmt.setReturnArrays(true);
  return stmt.all() as unknown as unknown[][];
}

/** Rows in runs of equal keys (as ORDER BY gives them), by key. */
function groupBy<T>(rows: T[], key: (row: T) => number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const r of rows) {
    const k = key(r);
    const run = out.get(k);
    if (run) run.push(r);
    else out.set(k, [r]);
  }
  return out;
}

/** A `.fl` file opened read-only. Every SQLite failure comes out as a FlFileError naming the file. */
export class FlReader {
  readonly file: string;
  readonly #db: DatabaseSync;

  private constructor(file: string, db: DatabaseSync) {
    this.file = file;
    this.#db = db;
  }

  static open(file: string): FlReader {
    checkHeader(file);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(file, { readOnly: true });
    } catch (e) {
      throw new TruncatedFlError(file, (e as Error).message);
    }
    const reader = new FlReader(file, db);
    try {
      // One shared lock held until close, instead of SQLite taking and
      // dropping it around every query (4 fcntl, a journal stat and a header
      // read each: a walk queries once per file and folder).
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      reader.#checkSchema();
    } catch (e) {
      db.close();
      throw e;
    }
    return reader;
  }

  close(): void {
    this.#db.close();
  }

  #query<T>(run: () => T): T {
    try {
      return run();
    } catch (e: unknown) {
      if ((e as { code?: string }).code === 'ERR_SQLITE_ERROR') {
        throw new TruncatedFlError(this.file, (e as Error).message);
      }
      throw e;
    }
  }

  #checkSchema(): void {
    this.#query(() => {
      for (const [table, columns] of Object.entries(REQUIRED)) {
        const have = new Set((this.#db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
        if (have.size === 0) throw new ForeignSchemaError(this.file, `no table "${table}"`);
        const missing = columns.filter((c) => !have.has(c));
        if (missing.length > 0) throw new ForeignSchemaError(this.file, `table "${table}" lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
      }
    });
  }

  tags(): Map<string, string> {
    return this.#query(() => {
      const rows = this.#db.prepare('SELECT key, value FROM tag ORDER BY key').all() as { key: string; value: string }[];
      return new Map(rows.map((r) => [String(r.key), String(r.value)]));
    });
  }

  routes(): FlRoute[] {
    const rows = this.#query(() => this.#db.prepare('SELECT start, "end", url FROM route ORDER BY rowid').all()) as unknown as FlRoute[];
    const isByte = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 255;
    for (const r of rows) {
      if (!isByte(r.start) || !isByte(r.end) || r.start > r.end) throw new FlFileError(this.file, `route range ${r.start}-${r.end} is not two bytes 0..255 with start <= end; fix the route or pack again`);
    }
    return rows.map((r) => ({ start: r.start, end: r.end, url: String(r.url) }));
  }

  /** The bytes of all regular files (hard links counted per name), for sizing the work ahead. */
  fileBytes(): number {
    const row = this.#query(() => this.#db.prepare('SELECT total(size) AS n FROM inode WHERE (mode & 61440) = 32768').get()) as { n: number };
    return row.n;
  }

  /** One entry by its absolute path ("/" is the root), or undefined; for `cat` without walking the tree. */
  lookup(path: string): FlEntry | undefined {
    const inode = this.#db.prepare('SELECT inode.*, extra.data AS data FROM inode LEFT JOIN extra ON inode.ino = extra.ino WHERE inode.ino = ?');
    const child = this.#db.prepare('SELECT inode.*, extra.data AS data FROM inode LEFT JOIN extra ON inode.ino = extra.ino WHERE inode.parent = ? AND inode.name = ? ORDER BY inode.ino LIMIT 1');
    let row = this.#query(() => inode.get(ROOT_INO)) as InodeRow | undefined;
    if (row === undefined) throw new BadTreeError(this.file, `no root inode (ino ${ROOT_INO})`);
    const names = path.split('/').filter((n) => n !== '');
    for (const name of names) {
      if (entryType(row.mode) !== 'dir') return undefined;
      const parent = row.ino;
      row = this.#query(() => child.get(parent, name)) as InodeRow | undefined;
      if (row === undefined) return undefined;
    }
    const blocks = this.#db.prepare('SELECT id, key FROM block WHERE ino = ? ORDER BY rowid');
    return this.#entry(row, names.length === 0 ? '/' : `/${names.join('/')}`, (ino) => this.#query(() => blocks.all(ino)) as unknown as BlockRow[]);
  }

  /**
   * The tree, depth first from the root; children in name order (SQLite's
   * binary collation: UTF-8 bytes). Two queries in all, the inodes grouped by
   * parent and the blocks by inode (a query per folder and per file cost as
   * much as the rest of the walk).
   */
  *walk(): Generator<FlEntry> {
    const inode = this.#db.prepare('SELECT inode.*, extra.data AS data FROM inode LEFT JOIN extra ON inode.ino = extra.ino WHERE inode.ino = ?');
    const root = this.#query(() => inode.get(ROOT_INO)) as InodeRow | undefined;
    if (root === undefined) throw new BadTreeError(this.file, `no root inode (ino ${ROOT_INO})`);
    if (entryType(root.mode) !== 'dir') throw new BadTreeError(this.file, `the root inode has mode 0o${root.mode.toString(8)}, not a directory`);
    // Rows as arrays, made into objects here: node:sqlite builds an object
    // row about 3x slower (bench/flist-sqlite.ts), which made these two
    // queries the whole cost of the walk.
    const inodeRows = this.#query(() => arrayRows(this.#db, `SELECT ${INODE_COLUMNS.map((c) => `inode.${c}`).join(', ')}, extra.data FROM inode LEFT JOIN extra ON inode.ino = extra.ino ORDER BY inode.parent, inode.name, inode.ino`));
    const childrenOf = groupBy(
      inodeRows.map((r): InodeRow => ({ ino: r[0], parent: r[1], name: r[2], size: r[3], uid: r[4], gid: r[5], mode: r[6], rdev: r[7], ctime: r[8], mtime: r[9], data: r[10] }) as InodeRow),
      (r) => r.parent,
    );
    const blockRows = this.#query(() => arrayRows(this.#db, 'SELECT ino, id, key FROM block ORDER BY ino, rowid'));
    const blocksOf = groupBy(
      blockRows.map((b): BlockRow => ({ ino: b[0] as number, id: b[1], key: b[2] })),
      (b) => b.ino!,
    );
    const seen = new Set<number>([ROOT_INO]);
    const stack: { row: InodeRow; path: string }[] = [{ row: root, path: '/' }];
    while (stack.length > 0) {
      const { row, path } = stack.pop()!;
      yield this.#entry(row, path, (ino) => blocksOf.get(ino) ?? []);
      if (entryType(row.mode) !== 'dir') continue;
      const kids = childrenOf.get(row.ino) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) {
        const kid = kids[i];
        if (seen.has(kid.ino)) throw new BadTreeError(this.file, `inode ${kid.ino} is reached twice (a loop in parent links)`);
        const name = String(kid.name);
        if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new BadTreeError(this.file, `inode ${kid.ino} has the name ${JSON.stringify(name)}`);
        seen.add(kid.ino);
        stack.push({ row: kid, path: path === '/' ? `/${name}` : `${path}/${name}` });
      }
    }
  }

  #entry(row: InodeRow, path: string, blocksOf: (ino: number) => BlockRow[]): FlEntry {
    const entry: FlEntry = {
      ino: row.ino,
      parent: row.parent,
      path,
      name: String(row.name),
      type: entryType(row.mode),
      mode: row.mode,
      uid: row.uid,
      gid: row.gid,
      size: row.size,
      mtime: row.mtime,
      ctime: row.ctime,
      rdev: row.rdev,
      blocks: [],
    };
    if (row.data !== null && row.data !== undefined) {
      entry.targetBytes = typeof row.data === 'string' ? Buffer.from(row.data) : Buffer.from(row.data);
      entry.target = entry.targetBytes.toString('utf8');
    }
    if (entry.type === 'file') {
      for (const b of blocksOf(row.ino)) entry.blocks.push({ id: this.#hash(path, 'id', b.id), key: this.#hash(path, 'key', b.key) });
    }
    return entry;
  }

  #hash(path: string, column: 'id' | 'key', value: unknown): Buffer {
    const buf = asBuffer(value);
    if (buf === undefined) throw new BadBlockError(this.file, path, column, value === null ? 'NULL' : `a ${typeof value}`);
    if (buf.length !== HASH_LENGTH) throw new BadBlockError(this.file, path, column, buf.length);
    return Buffer.from(buf);
  }
}

/** Removes the password of a route URL (rfs does so when packing unless asked not to). */
export function stripPassword(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RouteError(`route URL ${JSON.stringify(url.replace(/\/\/[^/@]*@/, '//…@'))} does not parse; expected e.g. dir:///path, zdb://host:9900/ns, http://host/chunks`);
  }
  if (parsed.password === '') return url;
  parsed.password = '';
  return parsed.href;
}

/** One node of the tree being written; a handle to add children and blocks under. */
export class FlWriterNode {
  readonly name: string;
  readonly meta: FlMeta;
  readonly target: Buffer | undefined;
  readonly blocks: FlBlock[] = [];
  readonly children = new Map<string, FlWriterNode>();
  constructor(name: string, meta: FlMeta, target: Buffer | undefined) {
    this.name = name;
    this.meta = meta;
    this.target = target;
  }
}

export interface RouteOptions {
  /** Keep the password in the URL (rfs strips it unless asked). */
  keepPassword?: boolean;
}

/**
 * Builds a tree in memory and writes it as a `.fl` in one go. Inode numbers
 * are assigned at write time (depth first, children in UTF-8 byte order of
 * their names), so the file does not depend on the order entries were added
 * in, e.g. by parallel chunk uploads finishing in any order.
 */
export class FlWriter {
  readonly root: FlWriterNode;
  readonly #tags = new Map<string, string>();
  readonly #routes: FlRoute[] = [];

  constructor(rootMeta: FlMeta) {
    if (entryType(rootMeta.mode) !== 'dir') throw new FlWriteError(`the root must be a directory, not mode 0o${rootMeta.mode.toString(8)}`);
    this.root = new FlWriterNode('/', rootMeta, undefined);
  }

  /** Adds an entry under a directory. A symlink takes its target; a file's blocks come with addBlock. */
  add(parent: FlWriterNode, name: string, meta: FlMeta, target?: string | Buffer): FlWriterNode {
    if (entryType(parent.meta.mode) !== 'dir') throw new FlWriteError(`cannot add ${JSON.stringify(name)} under ${JSON.stringify(parent.name)}: not a directory`);
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FlWriteError(`invalid entry name ${JSON.stringify(name)}`);
    if (Buffer.byteLength(name) > 255) throw new FlWriteError(`entry name longer than 255 bytes: ${JSON.stringify(name.slice(0, 40))}…`);
    if (parent.children.has(name)) throw new FlWriteError(`${JSON.stringify(name)} is added twice under ${JSON.stringify(parent.name)}`);
    const node = new FlWriterNode(name, meta, target === undefined ? undefined : Buffer.from(target));
    parent.children.set(name, node);
    return node;
  }

  addBlock(node: FlWriterNode, id: Buffer, key: Buffer): void {
    if (entryType(node.meta.mode) !== 'file') throw new FlWriteError(`${JSON.stringify(node.name)} is not a regular file; only files have blocks`);
    if (id.length !== HASH_LENGTH || key.length !== HASH_LENGTH) throw new FlWriteError(`block of ${JSON.stringify(node.name)}: id and key must be 32 bytes, got ${id.length} and ${key.length}`);
    node.blocks.push({ id: Buffer.from(id), key: Buffer.from(key) });
  }

  setTag(key: string, value: string): void {
    this.#tags.set(key, value);
  }

  addRoute(start: number, end: number, url: string, options: RouteOptions = {}): void {
    const isByte = (n: number) => Number.isInteger(n) && n >= 0 && n <= 255;
    if (!isByte(start) || !isByte(end) || start > end) throw new RouteError(`route range ${start}-${end}: expected two bytes 0..255, start <= end`);
    const stripped = stripPassword(url);
    this.#routes.push({ start, end, url: options.keepPassword ? url : stripped });
  }

  /** Writes the file: into a temporary name next to it, renamed into place once complete. */
  write(file: string): void {
    const partial = `${file}.partial-${process.pid}`;
    rmSync(partial, { force: true });
    const db = new DatabaseSync(partial);
    try {
      db.exec(SCHEMA.join(';\n\n') + ';');
      db.exec('BEGIN');
      const inode = db.prepare('INSERT INTO inode (ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      const extra = db.prepare('INSERT INTO extra (ino, data) VALUES (?, ?)');
      const block = db.prepare('INSERT INTO block (ino, id, key) VALUES (?, ?, ?)');
      let next = ROOT_INO;
      const stack: { node: FlWriterNode; parent: number }[] = [{ node: this.root, parent: 0 }];
      while (stack.length > 0) {
        const { node, parent } = stack.pop()!;
        const ino = next++;
        const m = node.meta;
        inode.run(ino, parent, node.name, m.size, m.uid, m.gid, m.mode, m.rdev, m.ctime, m.mtime);
        if (node.target !== undefined) extra.run(ino, node.target);
        for (const b of node.blocks) block.run(ino, b.id, b.key);
        const kids = [...node.children.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
        for (let i = kids.length - 1; i >= 0; i--) stack.push({ node: kids[i], parent: ino });
      }
      const tag = db.prepare('INSERT INTO tag (key, value) VALUES (?, ?)');
      for (const key of [...this.#tags.keys()].sort()) tag.run(key, this.#tags.get(key)!);
      const route = db.prepare('INSERT INTO route (start, "end", url) VALUES (?, ?, ?)');
      for (const r of this.#routes) route.run(r.start, r.end, r.url);
      db.exec('COMMIT');
      db.close();
    } catch (e) {
      if (db.isOpen) db.close();
      rmSync(partial, { force: true });
      throw e;
    }
    renameSync(partial, file);
  }
}
