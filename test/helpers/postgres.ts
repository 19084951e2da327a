// One PostgreSQL cluster for a test file: started before its tests, stopped
// after them, with what the tests opened on it (pools, proxies) closed
// first, newest first.
import type { TestFn } from 'ava';
import { startPostgres, type Postgres } from '../../harness/postgres.ts';

export interface SharedPostgres {
  /** The cluster (started by the file's before hook). */
  readonly db: Postgres;
  /** Closes `o` after the file's tests, before the cluster stops; gives it back. */
  keep<T extends { close(): Promise<void> }>(o: T): T;
}

export function sharedPostgres(test: TestFn): SharedPostgres {
  let db: Postgres | undefined;
  const opened: { close(): Promise<void> }[] = [];
  test.before(async () => {
    db = await startPostgres();
  });
  test.after.always(async () => {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    await db?.stop();
  });
  return {
    get db() {
      if (!db) throw new Error('the PostgreSQL cluster is not started yet (use it inside a test)');
      return db;
    },
    keep(o) {
      opened.push(o);
      return o;
    },
  };
}
