// Store URLs (the --store arguments and the routes of an .fl file) parsed
// into typed descriptions, and redact(), which strips the password so a
// URL can be written into an .fl file, a log or an error message.
import { StoreUrlError } from './errors.ts';

/** rfs keeps routes in a VARCHAR(2048) column. */
export const MAX_STORE_URL_LENGTH = 2048;
export const ZDB_DEFAULT_PORT = 9900;
/** 0-db's own limit on namespace names */
const ZDB_NAMESPACE_MAX = 128;

export interface DirStoreUrl {
  kind: 'dir';
  /** the URL as given, password stripped */
  url: string;
  path: string;
}

export interface ZdbStoreUrl {
  kind: 'zdb';
  url: string;
  target: { host: string; port: number } | { path: string };
  /** undefined: the server's default namespace */
  namespace: string | undefined;
  user: string | undefined;
  password: string | undefined;
}

export interface HttpStoreUrl {
  kind: 'http';
  url: string;
  /** http(s)://host[:port]/path without credentials nor trailing slash */
  base: string;
  user: string | undefined;
  password: string | undefined;
}

export interface S3StoreUrl {
  kind: 's3';
  url: string;
  tls: boolean;
  host: string;
  port: number;
  bucket: string;
  region: string | undefined;
  accessKey: string | undefined;
  /** undefined: unsigned requests (a public bucket, or a route whose secret was stripped) */
  secretKey: string | undefined;
}

export type StoreUrl = DirStoreUrl | ZdbStoreUrl | HttpStoreUrl | S3StoreUrl;

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/**
 * The URL with the password of its user part removed (`zdb://u:p@h/ns` ->
 * `zdb://u@h/ns`, `zdb://:p@h` -> `zdb://h`). A string operation, so it
 * works on URLs that do not parse and changes nothing else.
 */
export function redact(url: string): string {
  const scheme = SCHEME.exec(url);
  if (!scheme) return url;
  const start = scheme[0].length;
  const rest = url.slice(start);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const at = authority.lastIndexOf('@');
  if (at < 0) return url;
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  const user = userinfo.slice(0, colon);
  return url.slice(0, start) + (user ? `${user}@` : '') + authority.slice(at + 1) + rest.slice(authority.length);
}

/**
 * For error messages: redacted, bounded; and since a URL that does not
 * parse may be a mistyped one (zdb:/u:pw@h), anything like :secret@ left is masked.
 */
function shown(url: string): string {
  const r = redact(url).replace(/:[^:/@?#]*@/g, ':***@');
  return r.length > 200 ? `${r.slice(0, 200)}...` : r;
}

function decode(raw: string, url: string, what: string): string {
  let v: string;
  try {
    v = decodeURIComponent(raw);
  } catch {
    throw new StoreUrlError(shown(url), `bad percent-encoding in the ${what}`);
  }
  if (/[\x00-\x1f\x7f]/.test(v)) throw new StoreUrlError(shown(url), `control characters in the ${what}`);
  return v;
}

function optional(raw: string, url: string, what: string): string | undefined {
  return raw === '' ? undefined : decode(raw, url, what);
}

function hostOf(u: URL, url: string): string {
  if (u.hostname === '') throw new StoreUrlError(shown(url), 'no host');
  // net.connect wants IPv6 literals without their brackets
  return u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
}

function portOf(u: URL, url: string, fallback: number): number {
  if (u.port === '') return fallback;
  const port = Number(u.port);
  if (port < 1 || port > 65535) throw new StoreUrlError(shown(url), `port ${u.port} is outside 1-65535`);
  return port;
}

function noExtras(u: URL, url: string, allowQuery = false): void {
  if (u.hash !== '') throw new StoreUrlError(shown(url), 'a #fragment has no meaning here');
  if (!allowQuery && u.search !== '') throw new StoreUrlError(shown(url), 'a ?query has no meaning here');
}

function parseDir(u: URL, url: string): DirStoreUrl {
  if (u.host !== '') throw new StoreUrlError(shown(url), `dir:// takes an absolute path (dir:///path), not a host ("${u.host}")`);
  if (u.username !== '' || u.password !== '') throw new StoreUrlError(shown(url), 'dir:// takes no user or password');
  noExtras(u, url);
  const path = decode(u.pathname, url, 'path');
  if (path === '' || path === '/') throw new StoreUrlError(shown(url), 'dir:// needs a folder other than /');
  return { kind: 'dir', url: redact(url), path: path.length > 1 ? path.replace(/\/+$/, '') : path };
}

function parseZdb(u: URL, url: string): ZdbStoreUrl {
  noExtras(u, url);
  const user = optional(u.username, url, 'user');
  const password = optional(u.password, url, 'password');
  if (u.host === '') {
    // zdb:///path/to/socket: a unix socket, the default namespace
    if (user !== undefined || password !== undefined) throw new StoreUrlError(shown(url), 'a unix socket URL (zdb:///path) takes no user or password');
    const path = decode(u.pathname, url, 'socket path');
    if (path === '' || path === '/') throw new StoreUrlError(shown(url), 'no host and no unix socket path');
    return { kind: 'zdb', url: redact(url), target: { path }, namespace: undefined, user, password };
  }
  const target = { host: hostOf(u, url), port: portOf(u, url, ZDB_DEFAULT_PORT) };
  const rawNs = u.pathname.replace(/^\//, '');
  let namespace: string | undefined;
  if (rawNs !== '') {
    if (rawNs.includes('/')) throw new StoreUrlError(shown(url), 'the namespace is one path segment (zdb://host:port/namespace)');
    namespace = decode(rawNs, url, 'namespace');
    if (namespace.length > ZDB_NAMESPACE_MAX) throw new StoreUrlError(shown(url), `the namespace is longer than ${ZDB_NAMESPACE_MAX} characters`);
  }
  return { kind: 'zdb', url: redact(url), target, namespace, user, password };
}

function parseHttp(u: URL, url: string): HttpStoreUrl {
  noExtras(u, url);
  hostOf(u, url);
  const user = optional(u.username, url, 'user');
  const password = optional(u.password, url, 'password');
  const base = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  return { kind: 'http', url: redact(url), base, user, password };
}

/**
 * rfs's form: s3://key:secret@host:port/bucket[?region=name], s3s:// (or
 * s3+tls://) for TLS. The port is required, as rfs requires it, so every
 * route we write can be read by rfs.
 */
function parseS3(u: URL, url: string, tls: boolean): S3StoreUrl {
  if (u.hash !== '') throw new StoreUrlError(shown(url), 'a #fragment has no meaning here');
  const host = hostOf(u, url);
  if (u.port === '') throw new StoreUrlError(shown(url), 's3 needs a port: s3://key:secret@host:port/bucket');
  const port = portOf(u, url, 0);
  const accessKey = optional(u.username, url, 'access key');
  const secretKey = optional(u.password, url, 'secret key');
  const rawBucket = u.pathname.replace(/^\//, '');
  if (rawBucket === '' || rawBucket.includes('/')) throw new StoreUrlError(shown(url), 's3 needs exactly one bucket: s3://key:secret@host:port/bucket');
  const bucket = decode(rawBucket, url, 'bucket');
  let region: string | undefined;
  for (const [k, v] of u.searchParams) {
    if (k !== 'region') throw new StoreUrlError(shown(url), `unknown query parameter "${k}" (only region=)`);
    region = v;
  }
  return { kind: 's3', url: redact(url), tls, host, port, bucket, region, accessKey, secretKey };
}

/** Parses a store URL; throws StoreUrlError, one line, password never shown. */
export function parseStoreUrl(url: string): StoreUrl {
  if (typeof url !== 'string') throw new StoreUrlError(String(url), 'not a string');
  if (url.length > MAX_STORE_URL_LENGTH) throw new StoreUrlError(shown(url), `longer than ${MAX_STORE_URL_LENGTH} characters`);
  if (/[\x00-\x20\x7f]/.test(url)) throw new StoreUrlError(shown(url), 'spaces or control characters (percent-encode them)');
  const scheme = SCHEME.exec(url);
  if (!scheme) throw new StoreUrlError(shown(url), 'expected scheme://... (dir, zdb, http, https, s3, s3s)');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreUrlError(shown(url), 'not a valid URL (a bad host or port?)');
  }
  switch (scheme[1].toLowerCase()) {
    case 'dir':
      return parseDir(u, url);
    case 'zdb':
      return parseZdb(u, url);
    case 'http':
    case 'https':
      return parseHttp(u, url);
    case 's3':
      return parseS3(u, url, false);
    case 's3s':
    case 's3+tls':
      return parseS3(u, url, true);
    default:
      throw new StoreUrlError(shown(url), `unknown scheme "${scheme[1]}" (dir, zdb, http, https, s3, s3s)`);
  }
}
