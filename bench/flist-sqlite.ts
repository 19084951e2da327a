// node:sqlite against better-sqlite3 for what flists do with SQLite: write a
// `.fl` at pack (rfs's schema, one transaction, the inserts of
// FlWriter.write in its order) and read one back at unpack (FlReader.walk's
// queries: the lock pragma, the root, every inode joined with extra ordered
// by parent and name, every block ordered by inode; each row's fields read).
// The tree is synthetic, sized like a large image: --entries entries, about
// 30 per folder, 1 to 3 blocks per file, one entry in 20 a symlink. The same
// statements run on both drivers, taking turns round after round; medians
// of wall and CPU time (process.cpuUsage) are printed, with our whole
// FlWriter.write and FlReader.walk (node:sqlite plus our code) for scale.
// better-sqlite3 is not a dependency of the project: install it elsewhere
// (npm install --prefix /tmp/bsq better-sqlite3) and give its folder.
//   node bench/flist-sqlite.ts [--entries 50000] [--rounds 5] [--better-sqlite3 /tmp/bsq/node_modules/better-sqlite3]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { FlReader, FlWriter, type FlWriterNode } from '../flist/fl-file.ts';

const { values } = parseBenchArgs('bench/flist-sqlite.ts', {
  options: {
    entries: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '5' },
    'better-sqlite3': { type: 'string' },
  },
});
const ENTRIES = Number(values.entries);
const ROUNDS = Number(values.rounds);
if (![ENTRIES, ROUNDS].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error('bench/flist-sqlite.ts: --entries and --rounds take positive integers');
  process.exit(2);
}

/** The calls both drivers share (better-sqlite3's API is a superset for these). */
interface Statement {
  /** node:sqlite's setReturnArrays(true) or better-sqlite3's raw(true): rows as arrays */
  arrays(): Statement;
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface Db {
  exec(sql: string): unknown;
  prepare(sql: string): Statement;
  close(): unknown;
}
interface Driver {
  name: string;
  open(file: string, readOnly: boolean): Db;
}

/** Adds arrays() to each prepared statement: the drivers name the switch differently. */
function withArrays(db: Db, set: (stmt: Statement) => void): Db {
  const prepare = db.prepare.bind(db);
  return Object.assign(db, {
    prepare: (sql: string) => {
      const stmt = prepare(sql);
      return Object.assign(stmt, { arrays: () => (set(stmt), stmt) });
    },
  });
}

const drivers: Driver[] = [
  {
    name: 'node:sqlite',
    open: (file, readOnly) => withArrays(new DatabaseSync(file, { readOnly }) as unknown as Db, (s) => (s as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true)),
  },
];
const bsqPath = values['better-sqlite3'];
if (bsqPath === undefined) {
  console.log('better-sqlite3: skipped (not a project dependency; give --better-sqlite3 <its folder>, e.g. after npm install --prefix /tmp/bsq better-sqlite3)');
} else {
  try {
    const Database = createRequire(import.meta.url)(path.resolve(bsqPath)) as new (file: string, opts: { readonly: boolean }) => Db;
    const version = (JSON.parse(readFileSync(path.join(bsqPath, 'package.json'), 'utf8')) as { version: string }).version;
    drivers.push({ name: `better-sqlite3 ${version}`, open: (file, readOnly) => withArrays(new Database(file, { readonly: readOnly }), (s) => (s as unknown as { raw(on: boolean): void }).raw(true)) });
  } catch (e) {
    console.log(`better-sqlite3: skipped, cannot load ${bsqPath}: ${(e as Error).message.split('\n')[0]}`);
  }
}
for (const d of drivers) {
  const db = d.open(':memory:', false);
  console.log(`${d.name}: SQLite ${(db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v}`);
  db.close();
}

// The tree, as FlWriter builds it, then written once to take its rows and schema text.
const dir = mkdtempSync(path.join(tmpdir(), 'zb-bench-flsqlite-'));
const meta = (mode: number, size = 0) => ({ mode, uid: 0, gid: 0, size, mtime: 1700000000, ctime: 1700000000, rdev: 0 });
const writer = new FlWriter(meta(0o40755));
let folder: FlWriterNode = writer.root;
let blocks = 0;
for (let i = 1; i < ENTRIES; i++) {
  if (i % 30 === 1) folder = writer.add(writer.root, `dir-${i}`, meta(0o40755));
  else if (i % 20 === 0) writer.add(folder, `link-${i}`, meta(0o120777), `../target-${i}`);
  else {
    const n = 1 + (i % 3);
    const f = writer.add(folder, `file-${i}.so`, meta(0o100644, n * 300000));
    for (let b = 0; b < n; b++, blocks++) writer.addBlock(f, randomBytes(32), randomBytes(32));
  }
}
writer.addRoute(0, 255, 'dir:///var/cache/chunks');
const reference = path.join(dir, 'reference.fl');
const ourWrite = cpuAndWall(() => writer.write(reference));

const ref = new DatabaseSync(reference, { readOnly: true });
const schema = (ref.prepare(`SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid`).all() as { sql: string }[]).map((r) => r.sql);
const inodes = ref.prepare('SELECT ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime FROM inode ORDER BY ino').all().map((r) => Object.values(r));
const extras = ref.prepare('SELECT ino, data FROM extra ORDER BY ino').all().map((r) => Object.values(r));
const blockRows = ref.prepare('SELECT ino, id, key FROM block ORDER BY rowid').all().map((r) => Object.values(r));
const routes = ref.prepare('SELECT start, "end", url FROM route ORDER BY rowid').all().map((r) => Object.values(r));
ref.close();
const extrasOf = new Map(extras.map((e) => [e[0], e]));
const blocksOf = new Map<unknown, unknown[][]>();
for (const b of blockRows) blocksOf.set(b[0], [...(blocksOf.get(b[0]) ?? []), b]);
const fileBytes = readFileSync(reference).length;
console.log(`.fl: ${inodes.length} entries, ${blockRows.length} blocks, ${(fileBytes / 1e6).toFixed(1)} MB; ${ROUNDS} rounds, drivers taking turns`);

interface Measure {
  wall: number;
  cpu: number;
}
function cpuAndWall(fn: () => void): Measure {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const c = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6 };
}

/** FlWriter.write's statements with the rows it wrote. */
function writeWith(d: Driver, file: string): void {
  rmSync(file, { force: true });
  const db = d.open(file, false);
  db.exec(schema.join(';\n\n') + ';');
  db.exec('BEGIN');
  const inode = db.prepare('INSERT INTO inode (ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const extra = db.prepare('INSERT INTO extra (ino, data) VALUES (?, ?)');
  const block = db.prepare('INSERT INTO block (ino, id, key) VALUES (?, ?, ?)');
  for (const row of inodes) {
    inode.run(...row);
    const e = extrasOf.get(row[0]);
    if (e !== undefined) extra.run(...e);
    for (const b of blocksOf.get(row[0]) ?? []) block.run(...b);
  }
  const route = db.prepare('INSERT INTO route (start, "end", url) VALUES (?, ?, ?)');
  for (const r of routes) route.run(...r);
  db.exec('COMMIT');
  db.close();
}

/** FlReader.walk's queries, each field of each row read, rows as objects (as FlReader does) or arrays; returns a checksum of what was read. */
function readWith(d: Driver, file: string, arrays: boolean): number {
  const db = d.open(file, true);
  db.exec('PRAGMA locking_mode = EXCLUSIVE');
  const query = (sql: string) => (arrays ? db.prepare(sql).arrays() : db.prepare(sql));
  let sum = 0;
  const root = query('SELECT inode.*, extra.data AS data FROM inode LEFT JOIN extra ON inode.ino = extra.ino WHERE inode.ino = ?').get(1);
  sum += arrays ? (root as number[])[0] : ((root as Record<string, number>).ino);
  const inodeRows = query('SELECT inode.*, extra.data AS data FROM inode LEFT JOIN extra ON inode.ino = extra.ino ORDER BY inode.parent, inode.name, inode.ino').all();
  const blockRows = query('SELECT ino, id, key FROM block ORDER BY ino, rowid').all();
  if (arrays) {
    for (const r of inodeRows as unknown[][]) {
      sum += (r[0] as number) + (r[1] as number) + String(r[2]).length + (r[3] as number) + (r[6] as number) + (r[9] as number) + (r[10] == null ? 0 : (r[10] as Uint8Array).length);
    }
    for (const b of blockRows as [number, Uint8Array, Uint8Array][]) sum += b[0] + b[1][0] + b[2][31];
  } else {
    for (const r of inodeRows as Record<string, unknown>[]) {
      sum += (r.ino as number) + (r.parent as number) + String(r.name).length + (r.size as number) + (r.mode as number) + (r.mtime as number) + (r.data == null ? 0 : (r.data as Uint8Array).length);
    }
    for (const b of blockRows as { ino: number; id: Uint8Array; key: Uint8Array }[]) sum += b.ino + b.id[0] + b.key[31];
  }
  db.close();
  return sum;
}

const results = new Map<string, Measure[]>();
const record = (name: string, m: Measure) => results.set(name, [...(results.get(name) ?? []), m]);
try {
  const sums = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? drivers : [...drivers].reverse();
    for (const d of order) {
      const file = path.join(dir, `${d.name.split(' ')[0]}.fl`);
      record(`write ${d.name}`, cpuAndWall(() => writeWith(d, file)));
      for (const arrays of [false, true]) {
        let sum = 0;
        record(`read ${d.name}${arrays ? ', arrays' : ''}`, cpuAndWall(() => (sum = readWith(d, reference, arrays))));
        sums.set(`${d.name}${arrays}`, sum);
      }
    }
    record('our FlWriter.write (node:sqlite)', round === 0 ? ourWrite : cpuAndWall(() => writer.write(reference)));
    record('our FlReader.walk (node:sqlite)', cpuAndWall(() => {
      const r = FlReader.open(reference);
      for (const _ of r.walk());
      r.close();
    }));
  }
  if (new Set(sums.values()).size !== 1) throw new Error(`the drivers read different rows: ${[...sums].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  // what each driver wrote reads back the same through node:sqlite
  const written = drivers.map((d) => readWith(drivers[0], path.join(dir, `${d.name.split(' ')[0]}.fl`), false));
  if (new Set([...written, [...sums.values()][0]]).size !== 1) throw new Error('a driver wrote other rows');

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`medians of ${ROUNDS} rounds (${inodes.length} entries):`);
  for (const [name, ms] of results) {
    const wall = median(ms.map((m) => m.wall));
    const cpu = median(ms.map((m) => m.cpu));
    console.log(`  ${name.padEnd(36)} wall ${(wall * 1000).toFixed(0).padStart(5)} ms  CPU ${(cpu * 1000).toFixed(0).padStart(5)} ms  ${((inodes.length / cpu) / 1000).toFixed(0).padStart(4)}k entries/s of CPU`);
  }
  if (drivers.length > 1) {
    for (const op of ['write', 'read']) {
      const a = median(results.get(`${op} ${drivers[0].name}`)!.map((m) => m.cpu));
      const b = median(results.get(`${op} ${drivers[1].name}`)!.map((m) => m.cpu));
      console.log(`  ${op}: node:sqlite / better-sqlite3 CPU = ${(a / b).toFixed(2)} (> 1: better-sqlite3 faster)`);
    }
    const a = median(results.get(`read ${drivers[0].name}, arrays`)!.map((m) => m.cpu));
    const b = median(results.get(`read ${drivers[1].name}`)!.map((m) => m.cpu));
    console.log(`  read, node:sqlite with rows as arrays / better-sqlite3 with objects: CPU = ${(a / b).toFixed(2)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
