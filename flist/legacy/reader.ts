// A legacy 0-flist opened read-only: the SQLite database taken out of its tar
// (entries: directory keys and ACL keys -> Cap'n Proto messages; metadata:
// key -> text), walked into the same FlEntry records the .fl reader gives, so
// `ls`, `cat` and `unpack` share their output and their tree code.
import { DatabaseSync } from 'node:sqlite';
import type { FlBlock, FlEntry, FlEntryType } from '../fl-file.ts';
import { CapnpError } from './capnp.ts';
import { extractDb } from './container.ts';
import { LegacyFlistError } from './errors.ts';
import { createBlake2b, dirKey, type Hash } from './hash.ts';
import { decodeAci, decodeDir, type LegacyAci, type LegacyDir, type LegacyInode } from './schema.ts';

export const LEGACY_HASH_LENGTH = 16;

/** The `backend` metadata: where the chunks are (a zdb, or a redis-compatible server). */
export interface LegacyBackend {
  host: string;
  port: number;
  namespace?: string;
  password?: string;
}

const TYPE_BITS: Record<string, number> = { dir: 0o040000, file: 0o100000, symlink: 0o120000, fifo: 0o010000, char: 0o020000, block: 0o060000, socket: 0o140000 };
const DEVICE_DATA = /^(\d+),(\d+)$/;

/** Linux's dev_t encoding (glibc makedev), the one fl-file entries carry in rdev. */
function makedev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** True when an SQLite file has 0-flist's tables (flistdb.sqlite3 given without its tar). */
export function hasLegacyTables(file: string): boolean {
  try {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const names = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
      return names.has('entries') && names.has('metadata') && !names.has('inode');
    } finally {
      db.close();
    }
  } catch {
    return false;
  }
}

export class LegacyFlist {
  readonly file: string;
  readonly #db: DatabaseSync;
  readonly #cleanup: () => Promise<void>;
  readonly #blake128: Hash;
  readonly #acls = new Map<string, LegacyAci>();
  #get: ReturnType<DatabaseSync['prepare']> | undefined;

  private constructor(file: string, db: DatabaseSync, cleanup: () => Promise<void>, blake128: Hash) {
    this.file = file;
    this.#db = db;
    this.#cleanup = cleanup;
    this.#blake128 = blake128;
  }

  /** Opens a .flist (tar or tar.gz) or a bare flistdb.sqlite3 (`isDb`). */
  static async open(file: string, opts: { isDb?: boolean } = {}): Promise<LegacyFlist> {
    const { db: dbPath, cleanup } = opts.isDb ? { db: file, cleanup: async () => {} } : await extractDb(file);
    let db: DatabaseSync | undefined;
    try {
      try {
        db = new DatabaseSync(dbPath, { readOnly: true });
      } catch (e) {
        throw new LegacyFlistError(file, `the flist database does not open: ${(e as Error).message}`);
      }
      const reader = new LegacyFlist(file, db, cleanup, await createBlake2b(128));
      reader.#checkSchema();
      return reader;
    } catch (e) {
      db?.close();
      await cleanup();
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    await this.#cleanup();
  }

  #query<T>(run: () => T): T {
    try {
      return run();
    } catch (e) {
      if (e instanceof LegacyFlistError) throw e;
      if ((e as { code?: string }).code === 'ERR_SQLITE_ERROR') throw new LegacyFlistError(this.file, `truncated or damaged flist database (${(e as Error).message})`);
      throw e;
    }
  }

  #checkSchema(): void {
    this.#query(() => {
      for (const [table, columns] of [['entries', ['key', 'value']], ['metadata', ['key', 'value']]] as const) {
        const have = new Set((this.#db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
        if (have.size === 0) throw new LegacyFlistError(this.file, `not a 0-flist database: no table "${table}"`);
        for (const c of columns) if (!have.has(c)) throw new LegacyFlistError(this.file, `not a 0-flist database: table "${table}" lacks column ${c}`);
      }
    });
  }

  /** Every metadata row (backend, entrypoint, readme, ...). */
  metadata(): Map<string, string> {
    const rows = this.#query(() => this.#db.prepare('SELECT key, value FROM metadata ORDER BY key').all()) as { key: unknown; value: unknown }[];
    return new Map(rows.map((r) => [String(r.key), String(r.value)]));
  }

  /** The `backend` metadata, or undefined when the flist names none. */
  backend(): LegacyBackend | undefined {
    const raw = this.metadata().get('backend');
    if (raw === undefined) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw new LegacyFlistError(this.file, `the backend metadata is not JSON: ${JSON.stringify(raw.slice(0, 80))}`);
    }
    const o = v as Record<string, unknown>;
    const port = typeof o?.port === 'string' ? Number(o.port) : o?.port;
    if (typeof o?.host !== 'string' || o.host === '' || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
      throw new LegacyFlistError(this.file, `the backend metadata needs {"host": ..., "port": 1-65535}, got ${JSON.stringify(raw.slice(0, 80))}`);
    }
    const b: LegacyBackend = { host: o.host, port: port as number };
    if (typeof o.namespace === 'string' && o.namespace !== '') b.namespace = o.namespace;
    if (typeof o.password === 'string' && o.password !== '') b.password = o.password;
    return b;
  }

  #entryValue(key: string): Buffer | undefined {
    const row = this.#query(() => (this.#get ??= this.#db.prepare('SELECT value FROM entries WHERE key = ?')).get(key)) as { value: unknown } | undefined;
    if (row === undefined) return undefined;
    if (!(row.value instanceof Uint8Array)) throw new LegacyFlistError(this.file, `entry ${key} is not a BLOB`);
    return Buffer.from(row.value);
  }

  #dir(key: string, path: string): LegacyDir {
    const value = this.#entryValue(key);
    if (value === undefined) throw new LegacyFlistError(this.file, `${path}: directory entry ${key} is missing from the database; the flist is damaged`);
    try {
      return decodeDir(value);
    } catch (e) {
      if (e instanceof CapnpError) throw new LegacyFlistError(this.file, `${path}: directory entry ${key} does not decode (${e.message})`);
      throw e;
    }
  }

  #acl(key: string, path: string): LegacyAci {
    const known = this.#acls.get(key);
    if (known) return known;
    const value = key === '' ? undefined : this.#entryValue(key);
    if (value === undefined) throw new LegacyFlistError(this.file, `${path}: ACL ${JSON.stringify(key)} is missing from the database; the flist is damaged`);
    let aci: LegacyAci;
    try {
      aci = decodeAci(value);
    } catch (e) {
      if (e instanceof CapnpError) throw new LegacyFlistError(this.file, `${path}: ACL ${key} does not decode (${e.message})`);
      throw e;
    }
    this.#acls.set(key, aci);
    return aci;
  }

  /** An owner id: the recorded one; old flists give only a name (uid -1), of which "root" and numbers are known. */
  #owner(id: bigint, name: string): number {
    if (id >= 0n && id <= 0xffffffffn) return Number(id);
    return /^\d+$/.test(name) ? Number(name) : 0;
  }

  #entry(inode: LegacyInode, path: string, ino: number, parent: number): FlEntry {
    const aci = this.#acl(inode.aclkey, path);
    const a = inode.attributes;
    let type: FlEntryType;
    let rdev = 0;
    const blocks: FlBlock[] = [];
    let targetBytes: Buffer | undefined;
    if (a.kind === 'dir') type = 'dir';
    else if (a.kind === 'link') {
      type = 'symlink';
      targetBytes = a.target;
    } else if (a.kind === 'file') {
      type = 'file';
      for (const b of a.blocks) {
        if (b.hash.length !== LEGACY_HASH_LENGTH || b.key.length !== LEGACY_HASH_LENGTH) {
          throw new LegacyFlistError(this.file, `${path}: a block with a ${b.hash.length}-byte hash and a ${b.key.length}-byte key, not ${LEGACY_HASH_LENGTH} and ${LEGACY_HASH_LENGTH}; the flist is damaged`);
        }
        blocks.push({ id: b.hash, key: b.key });
      }
    } else {
      const device = DEVICE_DATA.exec(a.data.toString('latin1'));
      // zflist's putdir records every special file with type 0 (socket): a
      // "major,minor" then means a device (taken as a character device, the
      // kind images hold), anything else a fifo (a socket cannot be recreated).
      if (a.type === 'block') type = 'block';
      else if (a.type === 'chardev' || device) type = 'char';
      else type = 'fifo';
      if ((type === 'char' || type === 'block') && device) rdev = makedev(Number(device[1]), Number(device[2]));
    }
    const size = inode.size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(inode.size);
    const entry: FlEntry = {
      ino,
      parent,
      path,
      name: inode.name,
      type,
      mode: TYPE_BITS[type] | (aci.mode & 0o7777),
      uid: this.#owner(aci.uid, aci.uname),
      gid: this.#owner(aci.gid, aci.gname),
      size,
      mtime: inode.mtime,
      ctime: inode.ctime,
      rdev,
      blocks,
    };
    if (targetBytes !== undefined) {
      entry.targetBytes = targetBytes;
      entry.target = targetBytes.toString('utf8');
    }
    return entry;
  }

  #rootEntry(root: LegacyDir): FlEntry {
    return this.#entry({ name: '/', size: root.size, attributes: { kind: 'dir', key: '' }, aclkey: root.aclkey, mtime: root.mtime, ctime: root.ctime }, '/', 1, 0);
  }

  #checkName(name: string, where: string): void {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new LegacyFlistError(this.file, `${where}: an entry named ${JSON.stringify(name)}; the flist is damaged`);
  }

  /** The tree, depth first from the root; children in the UTF-8 byte order of their names (as the .fl reader). */
  *walk(): Generator<FlEntry> {
    const rootKey = dirKey(this.#blake128, '');
    const root = this.#dir(rootKey, '/');
    const seen = new Set<string>([rootKey]);
    let next = 1;
    yield this.#rootEntry(root);
    const stack: { inode: LegacyInode; path: string; parent: number }[] = [];
    const pushChildren = (dir: LegacyDir, path: string, ino: number) => {
      const kids = [...dir.contents].sort((a, b) => Buffer.compare(Buffer.from(b.name), Buffer.from(a.name)));
      for (const kid of kids) {
        this.#checkName(kid.name, path);
        stack.push({ inode: kid, path: path === '/' ? `/${kid.name}` : `${path}/${kid.name}`, parent: ino });
      }
    };
    pushChildren(root, '/', next++);
    while (stack.length > 0) {
      const { inode, path, parent } = stack.pop()!;
      const ino = next++;
      yield this.#entry(inode, path, ino, parent);
      if (inode.attributes.kind !== 'dir') continue;
      const key = inode.attributes.key;
      if (seen.has(key)) throw new LegacyFlistError(this.file, `${path}: directory entry ${key} is reached twice (a loop); the flist is damaged`);
      seen.add(key);
      pushChildren(this.#dir(key, path), path, ino);
    }
  }

  /** One entry by its absolute path ("/" is the root), read through the directory keys, or undefined. */
  lookup(path: string): FlEntry | undefined {
    const names = path.split('/').filter((n) => n !== '');
    if (names.length === 0) return this.#rootEntry(this.#dir(dirKey(this.#blake128, ''), '/'));
    const parentPath = names.slice(0, -1).join('/');
    if (this.#entryValue(dirKey(this.#blake128, parentPath)) === undefined) return undefined;
    const dir = this.#dir(dirKey(this.#blake128, parentPath), `/${parentPath}`);
    const inode = dir.contents.find((i) => i.name === names[names.length - 1]);
    return inode === undefined ? undefined : this.#entry(inode, `/${names.join('/')}`, 0, 0);
  }
}
