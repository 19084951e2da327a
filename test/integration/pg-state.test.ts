// PgState against a real PostgreSQL started by the test (Debian's 15, as
// user postgres, on loopback): schemas applied once however many servers
// start together, transactions that roll back on a throw, and errors that
// say where the database is without quoting the password.
import test from 'ava';
import { startPostgres } from '../../harness/postgres.ts';
import { sharedPostgres } from '../helpers/postgres.ts';
import { PgState, PgStateError } from '../../boot/state/pg.ts';
import { freePort } from '../../harness/listening.ts';
import { isAlive } from '../../lib/process.ts';
import { existsSync } from 'node:fs';

const pg = sharedPostgres(test);

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS t_items (id integer PRIMARY KEY, label text NOT NULL)',
  'CREATE INDEX IF NOT EXISTS t_items_label ON t_items (label)',
];

test.serial('ensureSchema twice in a row and eight at once from eight pools: one schema, recorded once', async (t) => {
  const a = await PgState.open(pg.db.url);
  try {
    await a.ensureSchema('items', SCHEMA);
    await a.ensureSchema('items', SCHEMA);
    // As eight servers starting at the same moment: CREATE TABLE IF NOT EXISTS alone races (duplicate pg_type rows) without the lock.
    const states = await Promise.all(Array.from({ length: 8 }, () => PgState.open(pg.db.url, { max: 2 })));
    try {
      await Promise.all(states.map((s) => s.ensureSchema('racing', ['CREATE TABLE IF NOT EXISTS t_race (id integer PRIMARY KEY)', 'INSERT INTO t_race VALUES (1)'])));
    } finally {
      await Promise.all(states.map((s) => s.close()));
    }
    // The INSERT would fail on its primary key if the list ran twice.
    t.is((await a.pool.query('SELECT count(*)::int AS n FROM t_race')).rows[0].n, 1);
    const rows = (await a.pool.query("SELECT name FROM zeroboot_schema WHERE name IN ('items', 'racing') ORDER BY name")).rows;
    t.deepEqual(rows.map((r) => r.name), ['items', 'racing']);
  } finally {
    await a.close();
  }
});

test.serial('tx commits what fn did, and a throw rolls all of it back and reaches the caller', async (t) => {
  const s = await PgState.open(pg.db.url);
  try {
    await s.ensureSchema('items', SCHEMA);
    await s.pool.query('DELETE FROM t_items');
    const out = await s.tx(async (c) => {
      await c.query("INSERT INTO t_items VALUES (1, 'kept')");
      return 'done';
    });
    t.is(out, 'done');
    const boom = new Error('boom');
    const err = await t.throwsAsync(
      s.tx(async (c) => {
        await c.query("INSERT INTO t_items VALUES (2, 'dropped')");
        await c.query("UPDATE t_items SET label = 'changed' WHERE id = 1");
        throw boom;
      }),
    );
    t.is(err, boom);
    t.deepEqual((await s.pool.query('SELECT id, label FROM t_items ORDER BY id')).rows, [{ id: 1, label: 'kept' }]);
    // The pool is usable afterwards: the failed transaction's connection came back clean.
    t.is(await s.tx(async (c) => (await c.query('SELECT count(*)::int AS n FROM t_items')).rows[0].n), 1);
  } finally {
    await s.close();
  }
});

test.serial('nothing listening, or a wrong password: one PgStateError naming host:port, never the password', async (t) => {
  const port = await freePort();
  const down = await t.throwsAsync(PgState.open(`postgresql://zeroboot:hunter2secret@127.0.0.1:${port}/postgres`), { instanceOf: PgStateError });
  t.regex(down!.message, new RegExp(`^cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port} \\(database postgres, user zeroboot\\): .*ECONNREFUSED`));
  t.false(down!.message.includes('hunter2secret'));
  const wrong = pg.db.url.replace(/:[^:@/]+@/, ':hunter2secret@');
  const denied = await t.throwsAsync(PgState.open(wrong), { instanceOf: PgStateError });
  t.regex(denied!.message, /password authentication failed for user "zeroboot"/);
  t.false(denied!.message.includes('hunter2secret'));
  t.false(denied!.message.includes(new URL(pg.db.url).password));
});

test.serial('the harness: its own folder and pid, both gone after stop', async (t) => {
  const other = await startPostgres();
  t.true(isAlive(other.pid));
  t.true(existsSync(other.dir));
  const s = await PgState.open(other.url);
  t.is((await s.pool.query('SELECT current_setting($1) AS v', ['unix_socket_directories'])).rows[0].v, other.dir);
  await s.close();
  await other.stop();
  t.false(isAlive(other.pid));
  t.false(existsSync(other.dir));
});
