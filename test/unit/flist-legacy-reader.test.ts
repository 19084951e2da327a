// The legacy reader on damaged copies of the reference-made fixture: a
// directory entry that loops back, names that would leave the tree, a
// database larger than the cap, Cap'n Proto that amplifies reads.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CapnpError, CapnpMessage } from '../../flist/legacy/capnp.ts';
import { extractDb } from '../../flist/legacy/container.ts';
import { LegacyFlistError } from '../../flist/legacy/errors.ts';
import { LegacyFlist } from '../../flist/legacy/reader.ts';

const FLIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/legacy-flist/tree.flist');
const ROOT_KEY = 'cae66941d9efbd404e4d88758ea67670';
const SUB_KEY = '73d580a1148567000871c163ef0e1ea3';

/** A copy of the fixture's database, changed by `edit`. */
function damaged(t: { teardown(f: () => void): void }, edit: (db: DatabaseSync, get: (key: string) => Buffer) => void): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'zb-legacy-reader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('tar', ['xzf', FLIST, '-C', dir]);
  const file = path.join(dir, 'flistdb.sqlite3');
  const db = new DatabaseSync(file);
  const get = (key: string) => Buffer.from((db.prepare('SELECT value FROM entries WHERE key = ?').get(key) as { value: Uint8Array }).value);
  edit(db, get);
  db.close();
  return file;
}

async function walkAll(file: string): Promise<string[]> {
  const f = await LegacyFlist.open(file, { isDb: true });
  try {
    return [...f.walk()].map((e) => e.path);
  } finally {
    await f.close();
  }
}

test('a directory entry that leads back to an ancestor is refused, not walked forever', async (t) => {
  const file = damaged(t, (db, get) => db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(get(ROOT_KEY), SUB_KEY));
  const e = await t.throwsAsync(walkAll(file), { instanceOf: LegacyFlistError });
  t.regex(e!.message, new RegExp(`${file}: /sub/sub: directory entry ${SUB_KEY} is reached twice \\(a loop\\)`));
});

test('names with a slash or "..", which would leave the destination, are refused', async (t) => {
  for (const [from, to] of [['big.bin', '../../x'], ['sub', 'a/b']]) {
    const file = damaged(t, (db, get) => {
      const v = get(ROOT_KEY);
      const at = v.indexOf(Buffer.from(`${from}\0`));
      Buffer.from(to).copy(v, at);
      db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(v, ROOT_KEY);
    });
    await t.throwsAsync(walkAll(file), { instanceOf: LegacyFlistError, message: new RegExp(`/: an entry named ${JSON.stringify(to).replace(/[./]/g, '\\$&')}; the flist is damaged`) });
  }
});

test('a missing directory entry or ACL names the path', async (t) => {
  const noSub = damaged(t, (db) => db.prepare('DELETE FROM entries WHERE key = ?').run(SUB_KEY));
  await t.throwsAsync(walkAll(noSub), { message: new RegExp(`/sub: directory entry ${SUB_KEY} is missing`) });
  const noAcl = damaged(t, (db) => db.prepare("DELETE FROM entries WHERE key = '2d28e41ae14a6bcf'").run());
  await t.throwsAsync(walkAll(noAcl), { message: /\/sub\/run\.sh: ACL "2d28e41ae14a6bcf" is missing/ });
  const junk = damaged(t, (db) => db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(Buffer.from('not capnp'), SUB_KEY));
  await t.throwsAsync(walkAll(junk), { message: new RegExp(`/sub: directory entry ${SUB_KEY} does not decode`) });
});

test('the database inside the tar is capped in size; nothing is left behind', async (t) => {
  const ours = () => readdirSync(tmpdir()).filter((n) => n.startsWith('zeroboot-flist-'));
  const before = new Set(ours());
  await t.throwsAsync(extractDb(FLIST, 10_000), { instanceOf: LegacyFlistError, message: /flistdb\.sqlite3 is larger than 10000 bytes; refused/ });
  t.deepEqual(ours().filter((n) => !before.has(n)), [], 'the temporary directory is removed');
  const { db, cleanup } = await extractDb(FLIST);
  t.true(statSync(db).size > 10_000);
  await cleanup();
});

test('backend metadata: host and port required; namespace and password kept', async (t) => {
  const cases: [string, unknown][] = [
    ['{"host": "10.0.0.1", "port": 9900, "namespace": "ns", "password": "pw"}', { host: '10.0.0.1', port: 9900, namespace: 'ns', password: 'pw' }],
    ['{"host": "h", "port": "9900"}', { host: 'h', port: 9900 }],
  ];
  for (const [json, want] of cases) {
    const file = damaged(t, (db) => db.prepare("UPDATE metadata SET value = ? WHERE key = 'backend'").run(json));
    const f = await LegacyFlist.open(file, { isDb: true });
    t.deepEqual(f.backend(), want);
    await f.close();
  }
  for (const json of ['{"host": "h"}', '{"port": 1}', 'not json', '{"host": "h", "port": 70000}']) {
    const file = damaged(t, (db) => db.prepare("UPDATE metadata SET value = ? WHERE key = 'backend'").run(json));
    const f = await LegacyFlist.open(file, { isDb: true });
    t.throws(() => f.backend(), { instanceOf: LegacyFlistError, message: /backend metadata/ });
    await f.close();
  }
});

test('capnp: many pointers to the same large text hit the traversal limit', (t) => {
  // a composite list of 200 one-pointer structs, each pointing at the same 100-word text
  const n = 200;
  const textWords = 100;
  const msg = Buffer.alloc(8 + (2 + 1 + n + textWords) * 8);
  msg.writeUInt32LE(0, 0);
  msg.writeUInt32LE(2 + 1 + n + textWords, 4);
  const word = (i: number, v: bigint) => msg.writeBigUInt64LE(BigInt.asUintN(64, v), 8 + i * 8);
  word(0, (1n << 48n) | 0n); // root -> struct at word 1, 0 data words, 1 pointer
  word(1, (BigInt(n) << 35n) | (7n << 32n) | 1n); // list at word 2, n words after the tag
  word(2, (1n << 48n) | (BigInt(n) << 2n)); // tag: n elements of 0 data words, 1 pointer
  for (let i = 0; i < n; i++) {
    const at = 3 + i;
    const text = 3 + n;
    word(at, (BigInt(textWords * 8) << 35n) | (2n << 32n) | (BigInt(text - at - 1) << 2n) | 1n);
  }
  msg.fill(0x61, 8 + (3 + n) * 8);
  msg[msg.length - 1] = 0;
  const root = CapnpMessage.parse(msg).root();
  const list = root.list(0)!;
  t.is(list.struct(0).text(0)!.length, textWords * 8 - 1);
  t.throws(
    () => {
      for (const s of list.structs()) s.data(0);
    },
    { instanceOf: CapnpError, message: /traversal limit/ },
  );
});

test('an ACL without uid/gid (old flists: the fields keep their default, -1) takes a numeric name, else 0', async (t) => {
  // ACI: 3 data words all zero (mode 0o640 set below; uid and gid stored XOR -1, so 0 means -1), pointers uname "1234", gname "staff"
  const msg = Buffer.alloc(8 + 8 * (1 + 3 + 3 + 1 + 1));
  msg.writeUInt32LE(0, 0);
  msg.writeUInt32LE(9, 4);
  const word = (i: number, v: bigint) => msg.writeBigUInt64LE(v, 8 + i * 8);
  word(0, (3n << 48n) | (3n << 32n)); // root struct at word 1: 3 data words, 3 pointers
  msg.writeUInt16LE(0o640, 8 + 8);
  word(4, (5n << 35n) | (2n << 32n) | (2n << 2n) | 1n); // uname at word 7: "1234\0"
  word(5, (6n << 35n) | (2n << 32n) | (2n << 2n) | 1n); // gname at word 8: "staff\0"
  msg.write('1234\0', 8 + 7 * 8);
  msg.write('staff\0', 8 + 8 * 8);
  const file = damaged(t, (db) => db.prepare("UPDATE entries SET value = ? WHERE key = 'cfea73bdebf583e2'").run(msg));
  const f = await LegacyFlist.open(file, { isDb: true });
  t.teardown(() => f.close());
  t.like(f.lookup('/hello.txt'), { uid: 1234, gid: 0, mode: 0o100640 });
});
