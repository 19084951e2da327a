import test from 'ava';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, chmodSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FlReader, FlWriter, stripPassword, type FlEntry, type FlMeta } from '../../flist/fl-file.ts';
import { BadBlockError, FlFileError, ForeignSchemaError, NotSqliteError, RouteError, TruncatedFlError } from '../../flist/errors.ts';

const FIXTURE = '/work/shared/fixtures/flist/hello-world-latest.fl';

// An independent reader: python3's sqlite3 module (its own SQLite build),
// building the paths from parent links itself.
const PY_DUMP = String.raw`
import sqlite3, sys, json
c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)
rows = c.execute('select i.ino, i.parent, i.name, i.size, i.uid, i.gid, i.mode, i.rdev, i.ctime, i.mtime, e.data from inode i left join extra e on i.ino = e.ino').fetchall()
by = {r[0]: r for r in rows}
def path(ino):
    r = by[ino]
    if r[1] == 0: return '/'
    p = path(r[1])
    return p + r[2] if p == '/' else p + '/' + r[2]
out = []
for r in rows:
    blocks = [[bytes(i).hex(), bytes(k).hex(), t1, t2] for (i, k, t1, t2) in c.execute('select id, key, typeof(id), typeof(key) from block where ino = ? order by rowid', (r[0],))]
    d = r[10]
    out.append({'ino': r[0], 'parent': r[1], 'path': path(r[0]), 'size': r[3], 'uid': r[4], 'gid': r[5], 'mode': r[6], 'rdev': r[7], 'ctime': r[8], 'mtime': r[9],
                'target': None if d is None else (d.decode('utf-8', 'replace') if isinstance(d, bytes) else d), 'blocks': blocks})
print(json.dumps({
  'entries': sorted(out, key=lambda e: e['path']),
  'tags': dict(c.execute('select key, value from tag').fetchall()),
  'routes': [list(r) for r in c.execute('select start, end, url from route order by rowid')],
  'schema': [r[0] for r in c.execute('select sql from sqlite_master where sql is not null order by rowid')],
}))
`;

interface PyDump {
  entries: { ino: number; parent: number; path: string; size: number; uid: number; gid: number; mode: number; rdev: number; ctime: number; mtime: number; target: string | null; blocks: [string, string, string, string][] }[];
  tags: Record<string, string>;
  routes: [number, number, string][];
  schema: string[];
}

function pyDump(file: string): PyDump {
  return JSON.parse(execFileSync('python3', ['-c', PY_DUMP, file], { encoding: 'utf8' })) as PyDump;
}

function readAll(file: string): FlEntry[] {
  const r = FlReader.open(file);
  try {
    return [...r.walk()];
  } finally {
    r.close();
  }
}

/** Our reader's view in the python dump's shape, to compare the two readers. */
function asDump(entries: FlEntry[]): PyDump['entries'] {
  return entries
    .map((e) => ({
      ino: e.ino, parent: e.parent, path: e.path, size: e.size, uid: e.uid, gid: e.gid, mode: e.mode, rdev: e.rdev, ctime: e.ctime, mtime: e.mtime,
      target: e.target ?? null,
      blocks: e.blocks.map((b) => [b.id.toString('hex'), b.key.toString('hex'), 'blob', 'blob'] as [string, string, string, string]),
    }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'flist-fl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the fixture written by rfs reads as python3 sqlite3 shows it', (t) => {
  const ours = readAll(FIXTURE);
  const py = pyDump(FIXTURE);
  t.deepEqual(asDump(ours), py.entries);
  const r = FlReader.open(FIXTURE);
  t.deepEqual(Object.fromEntries(r.tags()), py.tags);
  t.deepEqual(r.routes().map((x) => [x.start, x.end, x.url]), py.routes);
  r.close();
});

test('the fixture: names, types, modes, sizes, owners, symlink target and route as rfs wrote them', (t) => {
  const byPath = new Map(readAll(FIXTURE).map((e) => [e.path, e]));
  t.is(byPath.size, 15);
  const root = byPath.get('/')!;
  t.like(root, { ino: 1, parent: 0, name: '/', type: 'dir', mode: 0o40775, uid: 1000, gid: 1000 });
  t.like(byPath.get('/hello'), { type: 'file', mode: 0o100755, size: 13256, mtime: 1702677884, ctime: 1723726905 });
  t.is(byPath.get('/hello')!.blocks[0].id.toString('hex'), '1562992024d3ca03023b024ca90c93c35a1777cfcdd08fb184f2bef34e688de0');
  t.is(byPath.get('/.startup.toml')!.blocks[0].key.toString('hex'), '55d2a3dbf06913a629f5d560ee746a2fbe97e30771395e44da2a9566adb9c407');
  t.like(byPath.get('/etc/mtab'), { type: 'symlink', mode: 0o120777, target: '/proc/mounts' });
  t.like(byPath.get('/dev/pts'), { type: 'dir', mode: 0o40755 });
  t.deepEqual([...byPath.keys()].filter((p) => p.startsWith('/etc/')), ['/etc/hostname', '/etc/hosts', '/etc/mtab', '/etc/resolv.conf']);
  const r = FlReader.open(FIXTURE);
  t.deepEqual(r.routes(), [{ start: 0, end: 255, url: 'dir:///tmp/store0' }]);
  t.is(r.tags().size, 0);
  t.deepEqual(r.lookup('/etc/mtab'), byPath.get('/etc/mtab'));
  t.deepEqual(r.lookup('hello'), byPath.get('/hello'));
  t.deepEqual(r.lookup('/'), root);
  t.is(r.lookup('/etc/nope'), undefined);
  t.is(r.lookup('/hello/x'), undefined);
  r.close();
});

const DIR: FlMeta = { mode: 0o40755, uid: 0, gid: 0, size: 4096, mtime: 1700000000, ctime: 1700000001, rdev: 0 };
const id = (n: number) => Buffer.alloc(32, n);

/** A tree with every file type; `reverse` adds the same entries in the opposite order. */
function everyType(reverse = false): FlWriter {
  const w = new FlWriter(DIR);
  const steps: ((w: FlWriter) => void)[] = [
    (w) => {
      const etc = w.add(w.root, 'etc', { ...DIR, mode: 0o40700, uid: 5, gid: 6 });
      w.add(etc, 'mtab', { ...DIR, mode: 0o120777, size: 12 }, '/proc/mounts');
      const f = w.add(etc, 'passwd', { ...DIR, mode: 0o100644, size: 600 * 1024 });
      w.addBlock(f, id(1), id(2));
      w.addBlock(f, id(3), id(4));
    },
    (w) => {
      // rfs has no hardlinks: a second name is a second inode with the same blocks.
      const f = w.add(w.root, 'passwd-hardlink', { ...DIR, mode: 0o100644, size: 600 * 1024 });
      w.addBlock(f, id(1), id(2));
      w.addBlock(f, id(3), id(4));
    },
    (w) => w.add(w.root, 'empty', { ...DIR, mode: 0o100600, size: 0 }),
    (w) => w.add(w.root, 'fifo', { ...DIR, mode: 0o10644, size: 0 }),
    (w) => w.add(w.root, 'null', { ...DIR, mode: 0o20666, size: 0, rdev: (1 << 8) | 3 }),
    (w) => w.add(w.root, 'sda', { ...DIR, mode: 0o60660, size: 0, rdev: (8 << 8) | 0, gid: 6 }),
    (w) => w.add(w.root, 'sock', { ...DIR, mode: 0o140755, size: 0 }),
    (w) => {
      const f = w.add(w.root, 'su', { ...DIR, mode: 0o104755, size: 10, mtime: 1, ctime: 2 });
      w.addBlock(f, id(9), id(10));
    },
    (w) => w.add(w.root, 'ünïcode', { ...DIR, mode: 0o100644, size: 0 }),
    (w) => w.add(w.root, 'latin1-link', { ...DIR, mode: 0o120777, size: 3 }, Buffer.from([0x61, 0xe9, 0x2f])),
    (w) => {
      w.setTag('version', '3');
      w.setTag('author', 'zeroboot');
      w.addRoute(0, 127, 'zdb://user:secret@10.0.0.1:9900/ns');
      w.addRoute(128, 255, 'dir:///var/cache/chunks');
    },
  ];
  for (const s of reverse ? steps.slice().reverse() : steps) s(w);
  return w;
}

test('write -> read round trip of every file type, read back by python3 sqlite3 too', (t) => {
  const file = path.join(tmp(t), 'all.fl');
  everyType().write(file);
  const ours = readAll(file);
  const byPath = new Map(ours.map((e) => [e.path, e]));
  t.like(byPath.get('/'), { ino: 1, parent: 0, name: '/', type: 'dir' });
  t.like(byPath.get('/etc'), { type: 'dir', mode: 0o40700, uid: 5, gid: 6 });
  t.like(byPath.get('/etc/mtab'), { type: 'symlink', target: '/proc/mounts' });
  t.like(byPath.get('/etc/passwd'), { type: 'file', size: 600 * 1024 });
  t.deepEqual(byPath.get('/etc/passwd')!.blocks, [{ id: id(1), key: id(2) }, { id: id(3), key: id(4) }]);
  t.deepEqual(byPath.get('/passwd-hardlink')!.blocks, byPath.get('/etc/passwd')!.blocks);
  t.like(byPath.get('/empty'), { type: 'file', size: 0, blocks: [] });
  t.like(byPath.get('/fifo'), { type: 'fifo', mode: 0o10644 });
  t.like(byPath.get('/null'), { type: 'char', rdev: 259 });
  t.like(byPath.get('/sda'), { type: 'block', rdev: 2048, gid: 6 });
  t.like(byPath.get('/sock'), { type: 'socket' });
  t.like(byPath.get('/su'), { type: 'file', mode: 0o104755, mtime: 1, ctime: 2 });
  t.true(byPath.has('/ünïcode'));
  t.deepEqual(byPath.get('/latin1-link')!.targetBytes, Buffer.from([0x61, 0xe9, 0x2f]));
  t.is(ours.length, 13);

  const py = pyDump(file);
  t.deepEqual(asDump(ours), py.entries);
  t.true(py.entries.every((e) => e.blocks.every(([i, k, ti, tk]) => i.length === 64 && k.length === 64 && ti === 'blob' && tk === 'blob')));
  t.deepEqual(py.tags, { author: 'zeroboot', version: '3' });
  t.deepEqual(py.routes, [[0, 127, 'zdb://user@10.0.0.1:9900/ns'], [128, 255, 'dir:///var/cache/chunks']]);
  // The schema (tables, columns, indexes) is rfs's, text for text.
  t.deepEqual(py.schema, pyDump(FIXTURE).schema);
  t.is(execFileSync('sqlite3', ['-readonly', file, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim(), 'ok');
});

test('packing the same tree twice, in any order of adding, gives identical bytes', (t) => {
  const dir = tmp(t);
  everyType().write(path.join(dir, 'a.fl'));
  everyType(true).write(path.join(dir, 'b.fl'));
  t.true(readFileSync(path.join(dir, 'a.fl')).equals(readFileSync(path.join(dir, 'b.fl'))));
  t.deepEqual(readdirSync(dir).sort(), ['a.fl', 'b.fl'], 'no partial or journal file left');
});

test('route passwords are stripped unless asked to keep them; a URL that does not parse is refused', (t) => {
  t.is(stripPassword('zdb://user:pw@host:9900/ns'), 'zdb://user@host:9900/ns');
  t.is(stripPassword('s3://key:secret@host:9000/bucket?region=x'), 's3://key@host:9000/bucket?region=x');
  t.is(stripPassword('dir:///tmp/store0'), 'dir:///tmp/store0');
  const file = path.join(tmp(t), 'k.fl');
  const w = new FlWriter(DIR);
  w.addRoute(0, 255, 'zdb://user:pw@host:9900/ns', { keepPassword: true });
  w.write(file);
  const r = FlReader.open(file);
  t.is(r.routes()[0].url, 'zdb://user:pw@host:9900/ns');
  r.close();
  const e = t.throws(() => new FlWriter(DIR).addRoute(0, 255, 'not a url:pw@'), { instanceOf: RouteError });
  t.regex(e.message, /does not parse/);
  t.throws(() => new FlWriter(DIR).addRoute(3, 2, 'dir:///x'), { instanceOf: RouteError });
});

test('a route with a range outside one byte is refused, naming the file', (t) => {
  const file = path.join(tmp(t), 'route.fl');
  copyFileSync(FIXTURE, file);
  chmodSync(file, 0o644);
  execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update route set end = 256"); c.commit()', file]);
  const r = FlReader.open(file);
  t.teardown(() => r.close());
  t.throws(() => r.routes(), { instanceOf: FlFileError, message: `${file}: route range 0-256 is not two bytes 0..255 with start <= end; fix the route or pack again` });
});

test('a truncated file is refused with one line naming it', (t) => {
  const file = path.join(tmp(t), 'cut.fl');
  copyFileSync(FIXTURE, file);
  chmodSync(file, 0o644);
  truncateSync(file, 20000);
  const e = t.throws(() => readAll(file), { instanceOf: TruncatedFlError });
  t.is(e.message, `${file}: truncated or damaged SQLite file (20000 bytes, the header says 11 pages of 4096); fetch or pack it again`);
  truncateSync(file, 50);
  t.throws(() => readAll(file), { instanceOf: TruncatedFlError, message: /50 bytes, shorter than the 100-byte SQLite header/ });
  truncateSync(file, 0);
  t.throws(() => readAll(file), { instanceOf: TruncatedFlError, message: /the file is empty/ });
});

test('a missing file is refused with one line naming it', (t) => {
  const file = path.join(tmp(t), 'none.fl');
  t.throws(() => readAll(file), { instanceOf: FlFileError, message: `${file}: cannot open: ENOENT: no such file or directory` });
});

test('a file that is not SQLite is refused, naming it', (t) => {
  const file = path.join(tmp(t), 'text.fl');
  writeFileSync(file, 'hello world, this is not a database at all, but it is long enough to have a header of one hundred bytes........');
  const e = t.throws(() => readAll(file), { instanceOf: NotSqliteError });
  t.true(e.message.startsWith(`${file}: not an flist: not an SQLite file`));
  t.false(e.message.includes('\n'));
});

test('an SQLite file of another schema is refused, naming the missing table or column', (t) => {
  const dir = tmp(t);
  const other = path.join(dir, 'other.db');
  execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table entries (key text, value blob)"); c.commit()', other]);
  t.throws(() => readAll(other), { instanceOf: ForeignSchemaError, message: `${other}: not an rfs flist: no table "inode"; is it another program's SQLite database (a legacy .flist is a tar)?` });
  const noRoute = path.join(dir, 'noroute.fl');
  copyFileSync(FIXTURE, noRoute);
  chmodSync(noRoute, 0o644);
  execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("alter table inode drop column rdev"); c.commit()', noRoute]);
  t.throws(() => readAll(noRoute), { instanceOf: ForeignSchemaError, message: /table "inode" lacks column rdev/ });
  t.false(existsSync(`${noRoute}-journal`));
});

test('a block id or key that is not a 32-byte BLOB is refused, naming the file and path', (t) => {
  const file = path.join(tmp(t), 'short.fl');
  copyFileSync(FIXTURE, file);
  chmodSync(file, 0o644);
  execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update block set id = substr(id, 1, 31) where ino = 3"); c.commit()', file]);
  const e = t.throws(() => readAll(file), { instanceOf: BadBlockError });
  t.is(e.message, `${file}: /hello: block id is 31 bytes, not a 32-byte BLOB; the flist is damaged, pack it again`);
  execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update block set id = hex(id) where ino = 2"); c.commit()', file]);
  t.throws(() => readAll(file), { instanceOf: BadBlockError, message: /\/\.startup\.toml: block id is a string, not a 32-byte BLOB/ });
});

test('the writer refuses what rfs could not store', (t) => {
  const w = new FlWriter(DIR);
  const f = w.add(w.root, 'f', { ...DIR, mode: 0o100644 });
  t.throws(() => w.addBlock(f, Buffer.alloc(31), id(1)), { message: /32 bytes, got 31 and 32/ });
  t.throws(() => w.add(w.root, 'f', DIR), { message: /added twice/ });
  t.throws(() => w.add(w.root, 'a/b', DIR), { message: /invalid entry name/ });
  t.throws(() => w.add(f, 'x', DIR), { message: /not a directory/ });
});

test('fileBytes sums regular files only; readThreads gives one worker to a small tree, one per core to a large one', async (t) => {
  const { readThreads, SMALL_TREE_BYTES } = await import('../../flist/read-chunks.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'flist-bytes-'));
  try {
    const meta = (mode: number, size: number): FlMeta => ({ mode, uid: 0, gid: 0, size, mtime: 1, ctime: 1, rdev: 0 });
    const write = (sizes: number[]) => {
      const w = new FlWriter(meta(0o40755, 4096));
      const d = w.add(w.root, 'd', meta(0o40755, 4096));
      sizes.forEach((n, i) => w.add(d, `f${i}`, meta(0o100644, n)));
      w.add(d, 'link', meta(0o120777, 1 << 30), 'f0');
      const file = path.join(dir, `${sizes.length}.fl`);
      w.write(file);
      return FlReader.open(file);
    };
    const small = write([1000, SMALL_TREE_BYTES - 2000]);
    t.is(small.fileBytes(), SMALL_TREE_BYTES - 1000, 'folders and the symlink not counted');
    t.is(readThreads(small, 2), 1);
    small.close();
    const large = write([1000, SMALL_TREE_BYTES, 5]);
    t.is(readThreads(large, 2), 2);
    large.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
