// The `pg` setting: a PostgreSQL connection URL, checked without connecting
// (the configuration is validated before anything starts), and shown to
// people only with its password replaced.
import { didYouMean } from '../../lib/suggest.ts';

export const PG_SCHEMES = ['postgres', 'postgresql'] as const;

export class PgUrlError extends Error {
  override name = 'PgUrlError';
}

export interface PgTarget {
  host: string;
  port: number;
  database: string;
  user?: string;
}

/** Host, port, database and user of a postgres:// or postgresql:// URL; PgUrlError (never quoting a password) when it is not one. */
export function parsePgUrl(url: string): PgTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1];
  if (!scheme) throw new PgUrlError(`expected a URL such as postgresql://user:password@host:5432/zeroboot, got ${JSON.stringify(redactPgUrl(url).slice(0, 80))}`);
  if (!(PG_SCHEMES as readonly string[]).includes(scheme.toLowerCase())) throw new PgUrlError(`unknown scheme "${scheme}://"${didYouMean(scheme, PG_SCHEMES)}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PgUrlError(`${redactPgUrl(url)} is not a valid URL`);
  }
  // A unix socket folder comes as ?host=/run/postgresql, with no host part.
  const host = u.hostname || u.searchParams.get('host') || '';
  if (!host) throw new PgUrlError(`${redactPgUrl(url)} names no host (give host:port, or ?host=/socket/folder)`);
  const port = u.port === '' ? 5432 : Number(u.port);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database.includes('/')) throw new PgUrlError(`${redactPgUrl(url)}: the path must be one database name`);
  return { host, port, database: database || (u.username ? decodeURIComponent(u.username) : 'postgres'), ...(u.username ? { user: decodeURIComponent(u.username) } : {}) };
}

/** The URL with any password replaced by ***, for logs and error messages. */
export function redactPgUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}
