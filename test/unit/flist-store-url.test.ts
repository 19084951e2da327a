import test from 'ava';
import { StoreUrlError } from '../../flist/stores/errors.ts';
import { parseStoreUrl, redact, MAX_STORE_URL_LENGTH } from '../../flist/stores/url.ts';

test('dir:///path', (t) => {
  t.deepEqual(parseStoreUrl('dir:///var/cache/chunks/'), { kind: 'dir', url: 'dir:///var/cache/chunks/', path: '/var/cache/chunks' });
  t.is((parseStoreUrl('dir:///tmp/a%20b') as { path: string }).path, '/tmp/a b');
});

test('zdb with user, password, port and namespace', (t) => {
  t.deepEqual(parseStoreUrl('zdb://alice:s%40cret@zdb.example:9911/chunks'), {
    kind: 'zdb',
    url: 'zdb://alice@zdb.example:9911/chunks',
    target: { host: 'zdb.example', port: 9911 },
    namespace: 'chunks',
    user: 'alice',
    password: 's@cret',
  });
});

test('zdb defaults: port 9900, default namespace; password without user; IPv6', (t) => {
  const a = parseStoreUrl('zdb://127.0.0.1');
  t.like(a, { kind: 'zdb', target: { host: '127.0.0.1', port: 9900 }, namespace: undefined, password: undefined });
  const b = parseStoreUrl('zdb://:pw@[::1]/ns');
  t.like(b, { url: 'zdb://[::1]/ns', target: { host: '::1', port: 9900 }, namespace: 'ns', user: undefined, password: 'pw' });
});

test('zdb:///unix/socket/path', (t) => {
  t.like(parseStoreUrl('zdb:///run/zdb.sock'), { kind: 'zdb', target: { path: '/run/zdb.sock' }, namespace: undefined });
});

test('http(s) base without credentials or trailing slash', (t) => {
  t.like(parseStoreUrl('http://127.0.0.1:8080/chunks/'), { kind: 'http', base: 'http://127.0.0.1:8080/chunks' });
  t.like(parseStoreUrl('https://u:p@hub.example'), { kind: 'http', base: 'https://hub.example', url: 'https://u@hub.example', user: 'u', password: 'p' });
});

test('s3 and s3s', (t) => {
  t.deepEqual(parseStoreUrl('s3://key:secret@minio.local:9000/bucket?region=eu-1'), {
    kind: 's3',
    url: 's3://key@minio.local:9000/bucket?region=eu-1',
    tls: false,
    host: 'minio.local',
    port: 9000,
    bucket: 'bucket',
    region: 'eu-1',
    accessKey: 'key',
    secretKey: 'secret',
  });
  t.like(parseStoreUrl('s3s://k:s@h:443/b'), { tls: true, port: 443, region: undefined });
  t.like(parseStoreUrl('s3+tls://k:s@h:9000/b'), { tls: true, port: 9000 });
  // a route read back from an .fl has lost its secret: unsigned requests
  t.like(parseStoreUrl('s3://k@h:9000/b'), { accessKey: 'k', secretKey: undefined });
  t.like(parseStoreUrl('s3://h:9000/b'), { accessKey: undefined, secretKey: undefined });
});

test('redact strips the password and nothing else, parsable or not', (t) => {
  t.is(redact('zdb://user:pass@host:9900/ns'), 'zdb://user@host:9900/ns');
  t.is(redact('zdb://:pass@host/ns'), 'zdb://host/ns');
  t.is(redact('s3://k:se@cr@et@h:1/b?region=x'), 's3://k@h:1/b?region=x');
  t.is(redact('dir:///a:b@c/d'), 'dir:///a:b@c/d');
  t.is(redact('http://h/p?q=a:b@c'), 'http://h/p?q=a:b@c');
  t.is(redact('zdb://user@host'), 'zdb://user@host');
  t.is(redact('not a url :pw@'), 'not a url :pw@');
  t.is(redact('zdb://u:p@h:notaport'), 'zdb://u@h:notaport');
});

const bad: [string, RegExp][] = [
  ['', /expected scheme/],
  ['/tmp/store', /expected scheme/],
  ['ftp://host/x', /unknown scheme "ftp"/],
  ['dir://tmp/x', /absolute path/],
  ['dir:///', /other than \//],
  ['dir:///a%00b', /control characters/],
  ['dir:///a%zzb', /percent-encoding/],
  ['dir:///tmp/x?y=1', /query/],
  ['zdb://h:99999/ns', /not a valid URL/],
  ['zdb://h:0/ns', /outside 1-65535/],
  ['zdb://h/a/b', /one path segment/],
  [`zdb://h/${'n'.repeat(129)}`, /longer than 128/],
  ['zdb://u:p@/sock', /not a valid URL|no user/],
  ['zdb:///', /no host and no unix socket/],
  ['zdb://h/ns#frag', /fragment/],
  ['http://', /not a valid URL|no host/],
  ['s3://k:s@h/bucket', /needs a port/],
  ['s3://k:s@h:9000/', /exactly one bucket/],
  ['s3://k:s@h:1/b?acl=1', /unknown query parameter "acl"/],
  ['zdb://h/ns\nSET x y', /control characters/],
  ['zdb://h /ns', /spaces/],
  ['x'.repeat(MAX_STORE_URL_LENGTH + 1), /longer than 2048/],
];

for (const [url, reason] of bad) {
  test(`refused: ${JSON.stringify(url.slice(0, 40))}`, (t) => {
    const e = t.throws(() => parseStoreUrl(url), { instanceOf: StoreUrlError });
    t.regex(e!.message, reason);
    t.false(e!.message.includes('\n'), 'one line');
    t.true(e!.message.length < 400, 'bounded');
  });
}

test('a refused URL never shows its password', (t) => {
  for (const url of ['zdb://u:hunter2@h:0/ns', 's3://k:hunter2@h/', 'zdb://u:hunter2@h/a/b', 'ftp://u:hunter2@h/']) {
    const e = t.throws(() => parseStoreUrl(url), { instanceOf: StoreUrlError });
    t.false(e!.message.includes('hunter2'), e!.message);
  }
});

test('not a string', (t) => {
  t.throws(() => parseStoreUrl(undefined as unknown as string), { instanceOf: StoreUrlError, message: /not a string/ });
});

test('random hostile strings: only StoreUrlError, never the password in a message or in redact()', (t) => {
  const alphabet = ['zdb://', 'dir://', 's3://', 'http://', ':', '@', '/', '%', '%00', '[', ']', '?', '#', '=', 'h', '9', 'SECRETPW', '\n', ' ', '\u00e9', '..'];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    const url = Array.from({ length: 1 + rnd(10) }, () => alphabet[rnd(alphabet.length)]).join('');
    try {
      const d = parseStoreUrl(url);
      t.false(d.url.includes(':SECRETPW@'), url);
    } catch (e) {
      if (!(e instanceof StoreUrlError)) t.fail(`${JSON.stringify(url)}: ${(e as Error).name}`);
      if (/:[^@/]*SECRETPW[^@/]*@/.test(url.split(/[?#]/)[0]) && (e as Error).message.includes(':SECRETPW@')) t.fail(`password shown for ${JSON.stringify(url)}`);
    }
  }
  t.pass();
});

test('a mistyped URL does not echo what looks like a password', (t) => {
  const e = t.throws(() => parseStoreUrl('zdb:/u:hunter2@host/ns'), { instanceOf: StoreUrlError });
  t.is(e!.message, 'store URL "zdb:/u:***@host/ns" does not parse: expected scheme://... (dir, zdb, http, https, s3, s3s)');
});
