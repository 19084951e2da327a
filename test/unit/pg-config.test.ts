// The `pg` key: a postgres:// or postgresql:// URL, refused in one line that
// names the key and never quotes the password.
import test from 'ava';
import { parseConfig, ConfigError } from '../../boot/config.ts';
import { parsePgUrl, redactPgUrl } from '../../boot/state/pg-url.ts';
import { summary } from '../../boot/config-check.ts';

const doc = (pg: unknown) => ({ server: { address: '10.0.0.1' }, pg });

test('a postgresql:// URL is kept as given', (t) => {
  const url = 'postgresql://zb:s3cret@db.example:6432/farm';
  t.is(parseConfig(doc(url), '/etc/zeroboot').pg, url);
  t.deepEqual(parsePgUrl(url), { host: 'db.example', port: 6432, database: 'farm', user: 'zb' });
});

test('postgres:// works too, with the default port and the user as database', (t) => {
  t.deepEqual(parsePgUrl('postgres://zb@db'), { host: 'db', port: 5432, database: 'zb', user: 'zb' });
});

test('a unix socket folder instead of a host', (t) => {
  t.deepEqual(parsePgUrl('postgresql:///farm?host=/run/postgresql'), { host: '/run/postgresql', port: 5432, database: 'farm' });
});

test('no pg key: no database', (t) => {
  t.is(parseConfig(doc(undefined), '/etc/zeroboot').pg, undefined);
});

const refusals: [string, unknown, string][] = [
  ['a scheme typo', 'postgress://zb:s3cret@db/farm', 'pg: unknown scheme "postgress://" (did you mean "postgres"?)'],
  ['another store URL', 'mysql://zb:s3cret@db/farm', 'pg: unknown scheme "mysql://" (known: postgres, postgresql)'],
  ['not a URL', 'db.example:5432', 'pg: expected a URL such as postgresql://user:password@host:5432/zeroboot, got "db.example:5432"'],
  ['not text', { host: 'db' }, 'pg must be a URL such as postgresql://zeroboot:password@db.example:5432/zeroboot'],
  ['no host', 'postgresql://zb:s3cret@:5432/farm', 'pg: postgresql://zb:***@:5432/farm is not a valid URL'],
  ['no host at all', 'postgresql:///farm', 'pg: postgresql:///farm names no host (give host:port, or ?host=/socket/folder)'],
];

for (const [name, value, message] of refusals) {
  test(`refused in one line: ${name}`, (t) => {
    const err = t.throws(() => parseConfig(doc(value), '/etc/zeroboot'), { instanceOf: ConfigError });
    t.is(err!.message, message);
    t.false(err!.message.includes('s3cret'));
  });
}

test('the password is redacted for people', (t) => {
  t.is(redactPgUrl('postgresql://zb:s3cret@db:5432/farm'), 'postgresql://zb:***@db:5432/farm');
  t.is(redactPgUrl('postgresql://zb@db/farm'), 'postgresql://zb@db/farm');
});

test('serve --check names where the state is shared, without user or password', (t) => {
  const s = summary(parseConfig(doc('postgresql://zb:s3cret@db.example:6432/farm'), '/etc/zeroboot'));
  t.true(s.endsWith(', state shared in PostgreSQL at db.example:6432/farm'), s);
  t.false(s.includes('s3cret'));
  t.false(summary(parseConfig(doc(undefined), '/etc/zeroboot')).includes('PostgreSQL'));
});
