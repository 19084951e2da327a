// The request target as a path and query. RFC 9112 section 3.2.2: a server
// must accept the absolute form ("GET http://host:8080/path HTTP/1.1"), which
// proxies send and some clients use; it names the same resource as its path.

/** "http://host:port/p?q" -> "/p?q" (an empty path is "/"); other forms unchanged. */
export function originForm(target: string): string {
  const m = /^https?:\/\/[^/?#]*/i.exec(target);
  if (!m) return target;
  const rest = target.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}
