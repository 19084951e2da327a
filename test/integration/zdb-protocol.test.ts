// The zdb server as a real process, driven by ioredis (protocol 2) and
// redis-cli: every command, its replies and the reference's error strings;
// namespaces, auth (plain and SECURE), --protect, WAIT, hooks, unix socket
// and IPv6, rotation at 0.5 MiB with SCAN/RSCAN/KEYCUR across file jumps,
// HISTORY, and the dataset written by the real 0-db v2.0.7.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, cp, readdir, readFile, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startZdb, removeDir, tempDir, freePort, runZdbProcess, RawClient, type ZdbProcess } from '../helpers/zdb-process.ts';

const run = promisify(execFile);
const ADMIN = 'adminpw';
const FIXTURE = fileURLToPath(new URL('../fixtures/zdb/written-by-0db-v2.0.7', import.meta.url));

const servers: ZdbProcess[] = [];
const clients: Redis[] = [];
const dirs: string[] = [];

async function server(extra: string[] = [], opts: { dir?: string; tcp?: boolean; listeners?: number } = {}): Promise<ZdbProcess> {
  const s = await startZdb(extra, opts);
  servers.push(s);
  dirs.push(s.dir);
  return s;
}

function client(port: number, host = '127.0.0.1'): Redis {
  const r = new Redis({ port, host, protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

async function admin(port: number): Promise<Redis> {
  const r = client(port);
  await r.call('AUTH', ADMIN);
  return r;
}

/** The error text a command gets (the message of the RESP error). */
async function err(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    return `no error: ${JSON.stringify(v)}`;
  } catch (e) {
    return (e as Error).message;
  }
}

let main: ZdbProcess;

test.before(async () => {
  main = await server(['--admin', ADMIN, '--datasize', '524288']);
});

test.after.always(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all(servers.map((s) => s.kill('SIGKILL')));
  await Promise.all(dirs.map(removeDir));
});

test('PING, TIME, INFO, unknown and prefix commands', async (t) => {
  const r = client(main.port);
  t.is(await r.call('PING'), 'PONG');
  const [sec, usec] = (await r.call('TIME')) as string[];
  t.true(Math.abs(Number(sec) - Date.now() / 1000) < 5);
  t.true(Number(usec) >= 0 && Number(usec) < 1e6);
  const info = (await r.call('INFO')) as string;
  t.regex(info, /^# server\nserver_name: 0-db \(zdb\)\n/);
  t.regex(info, /commands_executed: \d+/);
  // the reference's fields, in its order (zos and monitoring scrape them)
  const keys = info.split('\n').filter((l) => l.includes(': ')).map((l) => l.split(': ')[0]);
  const mbPair = (k: string) => [`${k}_bytes`, `${k}_mb`];
  t.deepEqual(keys, [
    'server_name', 'server_revision', 'engine_revision', 'instance_id', 'boot_time', 'uptime',
    'clients_lifetime', 'sequential_key_size',
    'commands_executed', 'commands_failed', 'commands_unauthorized',
    'index_disk_read_failed', 'index_disk_write_failed', 'data_disk_read_failed', 'data_disk_write_failed',
    ...mbPair('index_disk_read'), ...mbPair('index_disk_write'), ...mbPair('data_disk_read'), ...mbPair('data_disk_write'),
    ...mbPair('network_rx'), ...mbPair('network_tx'),
  ]);
  const field = (text: string, k: string) => Number(new RegExp(`${k}: (\\d+)`).exec(text)![1]);
  await r.call('SET', 'info-probe', 'x'.repeat(1000));
  await r.call('GET', 'info-probe');
  const after = (await r.call('INFO')) as string;
  t.true(field(after, 'data_disk_write_bytes') >= field(info, 'data_disk_write_bytes') + 1000);
  t.true(field(after, 'index_disk_write_bytes') > field(info, 'index_disk_write_bytes'));
  t.true(field(after, 'data_disk_read_bytes') >= field(info, 'data_disk_read_bytes') + 1000);
  t.is(await err(r.call('FOO')), 'Command not supported');
  // the reference matches names as prefixes of its table (strncasecmp)
  t.is(await r.call('PI'), 'PONG');
  t.is(await err(r.call('STOP')), 'Unauthorized');
  t.is(await err(r.call('KSCAN', 'x')), 'Command disabled in release code, not yet available');
});

test('SET/GET/EXISTS/CHECK/LENGTH/KEYTIME/DEL/MGET and their errors', async (t) => {
  const r = client(main.port);
  await r.call('SELECT', 'default');
  t.is(await r.call('SET', 'dk1', 'hello'), 'dk1');
  t.is(await r.call('SET', 'dk1', 'hello'), null, 'unchanged value: nil');
  t.is(await r.call('SETX', 'dk1', 'hello!'), 'dk1');
  t.is(await r.call('GET', 'dk1'), 'hello!');
  t.is(await r.call('GET', 'nope'), null);
  t.is(await r.call('EXISTS', 'dk1'), 1);
  t.is(await r.call('EXISTS', 'nope'), 0);
  t.is(await r.call('CHECK', 'dk1'), 1);
  t.is(await r.call('CHECK', 'nope'), null);
  t.is(await r.call('LENGTH', 'dk1'), 6);
  t.is(await r.call('LENGTH', 'nope'), null);
  const kt = (await r.call('KEYTIME', 'dk1')) as number;
  // the time of the write, give or take a loaded machine
  t.true(Math.abs(kt - Date.now() / 1000) < 120);
  t.is(await r.call('KEYTIME', 'nope'), null);
  t.deepEqual(await r.call('MGET', 'dk1', 'nope'), ['hello!', null]);
  t.is(await r.call('DEL', 'dk1'), 'OK');
  t.is(await err(r.call('DEL', 'dk1')), 'Key not found');
  t.is(await r.call('GET', 'dk1'), null);

  const k256 = 'k'.repeat(256);
  t.is(await err(r.call('SET', k256, 'v')), 'Key too large');
  t.is(await r.call('SET', 'k'.repeat(255), 'v'), 'k'.repeat(255));
  t.is(await err(r.call('GET', k256)), 'Invalid key');
  t.is(await err(r.call('EXISTS', k256)), 'Invalid key');
  t.is(await err(r.call('DEL', k256)), 'Invalid key');
  t.is(await err(r.call('MGET', 'a', k256)), 'Invalid key');
  t.is(await err(r.call('MGET')), 'Invalid arguments');
  t.is(await err(r.call('SET', '', 'v')), 'Invalid argument, key needed');
  t.is(await err(r.call('SET', 'a')), 'Unexpected arguments');
  t.is(await err(r.call('GET', '')), 'Invalid argument');
  t.is(await err(r.call('SET', 'a', 'b', '1000')), 'Permission denied');

  const bin = randomBytes(1000);
  const bkey = Buffer.from([0, 1, 2, 255, 13, 10]);
  t.deepEqual(await r.callBuffer('SET', bkey, bin), bkey);
  t.deepEqual(await r.callBuffer('GET', bkey), bin);
});

test('admin SET with a timestamp, DBSIZE', async (t) => {
  const r = await admin(main.port);
  await r.call('NSNEW', 'stamps');
  await r.call('SELECT', 'stamps');
  t.is(await r.call('SET', 'old', 'v', '1000000'), 'old');
  t.is(await r.call('KEYTIME', 'old'), 1000000);
  t.is(await r.call('DBSIZE'), 1);
});

test('AUTH: plain, SECURE challenge (single use), refusals', async (t) => {
  const r = client(main.port);
  t.is(await err(r.call('AUTH', 'wrong')), 'Access denied');
  t.is(await err(r.call('AUTH', 'SECURE', createHash('sha1').update('x').digest('hex'))), 'No CHALLENGE requested, secure authentication not available');
  const nonce = (await r.call('AUTH', 'SECURE', 'CHALLENGE')) as string;
  t.regex(nonce, /^[0-9a-f]{16}$/);
  t.is(await err(r.call('AUTH', 'SECURE', 'abc')), 'Invalid hash length');
  const proof = createHash('sha1').update(`${nonce}:${ADMIN}`).digest('hex');
  t.is(await r.call('AUTH', 'SECURE', proof), 'OK');
  t.is(await err(r.call('AUTH', 'SECURE', proof)), 'No CHALLENGE requested, secure authentication not available', 'a nonce is single-use');
  t.is(await err(r.call('AUTH', 'PLAIN', 'x')), 'Only SECURE extra method supported');
  t.is(await err(r.call('AUTH', 'a', 'b', 'c')), 'Unexpected arguments');
  const plain = client(main.port);
  t.is(await plain.call('AUTH', ADMIN), 'OK');
  t.is(await plain.call('NSNEW', 'authns'), 'OK');
});

test('namespaces: NSNEW/NSLIST/NSINFO/NSSET/SELECT/NSDEL and their errors', async (t) => {
  const a = await admin(main.port);
  const u = client(main.port);
  t.is(await err(u.call('NSNEW', 'n1')), 'Permission denied');
  t.is(await a.call('NSNEW', 'n1'), 'OK');
  t.is(await err(a.call('NSNEW', 'n1')), 'This namespace is not available');
  t.is(await err(a.call('NSNEW', 'default')), 'This name is not allowed');
  t.is(await err(a.call('NSNEW', 'a/b')), 'This name is not allowed');
  t.is(await err(a.call('NSNEW', 'x'.repeat(129))), 'Namespace too long');
  t.is(await err(a.call('NSNEW')), 'Unexpected arguments');
  t.true(((await a.call('NSLIST')) as string[]).includes('n1'));

  const info = (await a.call('NSINFO', 'n1')) as string;
  const fields = Object.fromEntries(info.trim().split('\n').slice(1).map((l) => l.split(': ')));
  t.is(info.split('\n')[0], '# namespace');
  t.is(fields.name, 'n1');
  t.is(fields.entries, '0');
  t.is(fields.public, 'yes');
  t.is(fields.password, 'no');
  t.is(fields.mode, 'userkey');
  t.is(fields.next_internal_id, '0x00000000');
  for (const f of ['data_size_bytes', 'data_limits_bytes', 'index_size_bytes', 'worm', 'locked', 'index_disk_freespace_bytes', 'data_disk_freespace_bytes', 'data_path', 'index_path']) t.true(f in fields, f);
  t.false('data_path' in Object.fromEntries(((await u.call('NSINFO', 'n1')) as string).trim().split('\n').map((l) => l.split(': '))), 'paths are for admins only');
  t.is(await err(a.call('NSINFO', 'nope')), 'Namespace not found');

  t.is(await err(u.call('NSSET', 'n1', 'password', 'p')), 'Permission denied');
  t.is(await err(a.call('NSSET', 'default', 'password', 'p')), 'Cannot update default namespace');
  t.is(await err(a.call('NSSET', 'nope', 'password', 'p')), 'Namespace not found');
  t.is(await err(a.call('NSSET', 'n1', 'colour', 'blue')), 'Invalid property');
  t.is(await err(a.call('NSSET', 'n1', 'password', 'x'.repeat(64))), 'Invalid value');
  t.is(await a.call('NSSET', 'n1', 'password', 'secret'), 'OK');
  t.is(await a.call('NSSET', 'n1', 'public', '0'), 'OK');

  t.is(await err(u.call('SELECT', 'n1')), 'Namespace protected and private');
  t.is(await err(u.call('SELECT', 'n1', 'bad')), 'Access denied');
  t.is(await err(u.call('SELECT', 'nope')), 'Namespace not found');
  t.is(await err(u.call('SELECT')), 'Invalid argument');
  t.is(await u.call('SELECT', 'n1', 'secret'), 'OK');
  t.is(await u.call('SET', 'k', 'v'), 'k');

  // public + password: anyone reads, only the password writes
  t.is(await a.call('NSSET', 'n1', 'public', '1'), 'OK');
  const ro = client(main.port);
  t.is(await ro.call('SELECT', 'n1'), 'OK');
  t.is(await ro.call('GET', 'k'), 'v');
  t.is(await err(ro.call('SET', 'k', 'w')), 'Namespace is in read-only mode');
  t.is(await err(ro.call('DEL', 'k')), 'Namespace is in read-only mode');

  // SELECT with SECURE password proof
  const sec = client(main.port);
  const nonce = (await sec.call('AUTH', 'SECURE', 'CHALLENGE')) as string;
  const selectProof = createHash('sha1').update(`${nonce}:secret`).digest('hex');
  t.is(await sec.call('SELECT', 'n1', 'SECURE', selectProof), 'OK');
  t.is(await sec.call('SET', 'k2', 'v'), 'k2');
  t.is(await err(sec.call('SELECT', 'n1', 'SECURE', selectProof)), 'No CHALLENGE requested, secure authentication not available', 'a nonce is single-use');
  const guess = client(main.port);
  await guess.call('AUTH', 'SECURE', 'CHALLENGE');
  t.is(await err(guess.call('SELECT', 'n1', 'SECURE', 'f'.repeat(40))), 'Access denied');
  t.is(await err(guess.call('SELECT', 'n1', 'SECURE', 'e'.repeat(40))), 'No CHALLENGE requested, secure authentication not available', 'a wrong proof uses the nonce up');

  // NSDEL: not default, not the one in use; clients on it are told, then dropped
  t.is(await err(a.call('NSDEL', 'default')), 'Cannot remove default namespace');
  t.is(await err(a.call('NSDEL', 'nope')), "This namespace doesn't exists");
  await a.call('SELECT', 'n1', 'secret');
  t.is(await err(a.call('NSDEL', 'n1')), "Cannot remove namespace you're currently using.");
  await a.call('SELECT', 'default');
  t.is(await a.call('NSDEL', 'n1'), 'OK');
  t.is(await err(u.call('GET', 'k')), 'Your active namespace is not available anymore (probably removed).');
  t.false(((await a.call('NSLIST')) as string[]).includes('n1'));
});

test('without --admin, AUTH is disabled but AUTH SECURE CHALLENGE still serves SELECT SECURE (as 0-db)', async (t) => {
  const s = await server([]);
  const r = client(s.port);
  t.is(await err(r.call('AUTH', 'x')), 'Authentication disabled');
  t.is(await err(r.call('AUTH', 'a', 'b', 'c')), 'Unexpected arguments');
  await r.call('NSNEW', 'p');
  await r.call('NSSET', 'p', 'password', 'pw');
  await r.call('NSSET', 'p', 'public', '0');
  const nonce = (await r.call('AUTH', 'SECURE', 'CHALLENGE')) as string;
  t.regex(nonce, /^[0-9a-f]{16}$/);
  t.is(await err(r.call('AUTH', 'SECURE', 'e'.repeat(40))), 'Authentication disabled');
  t.is(await r.call('SELECT', 'p', 'SECURE', createHash('sha1').update(`${nonce}:pw`).digest('hex')), 'OK');
  t.is(await r.call('SET', 'k', 'v'), 'k');
});

test('NSINFO: the lines of 0-db v2.0.7 in its order (checked against the release build), next_internal_id as its bswap_64', async (t) => {
  const s = await server(['--admin', ADMIN]);
  const a = await admin(s.port);
  await a.call('NSNEW', 'sq');
  await a.call('NSSET', 'sq', 'mode', 'seq');
  const c = client(s.port);
  await c.call('SELECT', 'sq');
  await c.call('SET', '', 'one');
  await c.call('SET', '', 'two');
  const info = (await a.call('NSINFO', 'sq')) as string;
  const names = info.trim().split('\n').map((l) => l.split(':')[0]);
  t.deepEqual(names, [
    '# namespace', 'name', 'entries', 'public', 'worm', 'locked', 'password', 'data_size_bytes', 'data_size_mb', 'data_limits_bytes',
    'index_size_bytes', 'index_size_kb', 'next_internal_id', 'mode', 'stats_index_io_errors', 'stats_index_io_error_last', 'stats_index_faults',
    'stats_data_io_errors', 'stats_data_io_error_last', 'stats_data_faults', 'index_disk_freespace_bytes', 'index_disk_freespace_mb',
    'data_disk_freespace_bytes', 'data_disk_freespace_mb', 'data_path', 'data_active', 'index_path', 'index_active', 'data_current_id', 'data_current_offset',
  ]);
  t.regex(info, /\nnext_internal_id: 0x200000000000000\n/, '0-db prints it with "0x%08" PRIx64: at least 8 digits');
  t.regex(info, /\nindex_size_bytes: 144\n/, 'two sequential keys at 64 + 8 bytes each');
  t.regex(info, /\ndata_active: .*\/sq\/d0\n/);
  const anon = (await c.call('NSINFO', 'sq')) as string;
  t.false(/data_path|data_active|data_current/.test(anon), 'paths and offsets for admins only');
});

test('NSSET maxsize -1 and >= 2^64 answer OK as 0-db does (atoll into a u64), kept exactly across a restart', async (t) => {
  const s = await server(['--admin', ADMIN]);
  const a = await admin(s.port);
  await a.call('NSNEW', 'huge');
  const limit = async () => /data_limits_bytes: (\d+)\n/.exec((await a.call('NSINFO', 'huge')) as string)?.[1];
  t.is(await a.call('NSSET', 'huge', 'maxsize', '-1'), 'OK');
  t.is(await limit(), '18446744073709551615');
  const c = client(s.port);
  await c.call('SELECT', 'huge');
  t.is(await c.call('SET', 'k', 'v12345'), 'k', 'no practical limit');
  // 0-db adds the replaced value to the limit as a size_t: it wraps, so an overwrite is refused
  t.is(await err(c.call('SET', 'k', 'other')), 'No space left on this namespace');
  t.is(await a.call('NSSET', 'huge', 'maxsize', '18446744073709551616'), 'OK');
  t.is(await limit(), '9223372036854775807', 'atoll saturates');
  t.is(await a.call('NSSET', 'huge', 'maxsize', '-1'), 'OK');
  await s.kill('SIGINT');
  const again = await server(['--admin', ADMIN], { dir: s.dir });
  const b = await admin(again.port);
  t.regex((await b.call('NSINFO', 'huge')) as string, /data_limits_bytes: 18446744073709551615\n/);
  t.is(await b.call('NSSET', 'huge', 'password', 'pw'), 'OK', 'a descriptor holding 2^64 - 1 is rewritten without error');
});

test('namespace names: what 0-db accepts (CR/LF, RESP-looking text) works and stays out of the log structure; the rest is refused', async (t) => {
  const s = await server(['--admin', ADMIN]);
  const a = await admin(s.port);
  const odd = ['a\r\nb', '+OK', '*1\r\n$4\r\nPING', '-ERR x', '\x1b[31mred'];
  for (const n of odd) t.is(await a.call('NSNEW', n), 'OK', JSON.stringify(n));
  t.deepEqual(await a.call('NSLIST'), ['default', ...odd]);
  for (const [n, why] of [['.', 'dot'], ['..', 'dot dot'], ['a/b', 'slash'], ['default', 'default']]) {
    t.is(await err(a.call('NSNEW', n)), 'This name is not allowed', why);
  }
  t.is(await err(a.call('NSNEW', 'x'.repeat(129))), 'Namespace too long');
  const c = client(s.port);
  t.is(await c.call('SELECT', 'a\r\nb'), 'OK');
  t.is(await c.call('SET', 'k', 'v'), 'k');
  await s.kill('SIGINT');
  // a torn tail makes the next start log a repair naming the namespace: escaped, on one line
  await appendFile(path.join(s.dataDir, 'a\r\nb', 'd0'), Buffer.alloc(5, 1));
  const again = await server(['--admin', ADMIN], { dir: s.dir });
  t.true(again.output().includes('namespace a\\x0d\\x0ab: '), again.output());
  for (const line of again.output().split('\n')) t.false(/^(b|\$4|PING|\x1b)/.test(line), `log line ${JSON.stringify(line)}`);
  const b = await admin(again.port);
  t.deepEqual([...((await b.call('NSLIST')) as string[])].sort(), ['default', ...odd].sort(), 'the names load back from their directories');
  await b.call('SELECT', 'a\r\nb');
  t.is(await b.call('GET', 'k'), 'v');
});

test('maxsize, worm, lock, freeze, FLUSH, RELOAD', async (t) => {
  const a = await admin(main.port);
  await a.call('NSNEW', 'lim');
  await a.call('NSSET', 'lim', 'maxsize', '10');
  const c = client(main.port);
  await c.call('SELECT', 'lim');
  t.is(await c.call('SET', 'a', '12345678'), 'a');
  t.is(await err(c.call('SET', 'b', '123')), 'No space left on this namespace');
  t.is(await c.call('SET', 'a', '0123456789'), 'a', 'an overwrite may use the space it frees');
  t.regex((await a.call('NSINFO', 'lim')) as string, /data_limits_bytes: 10\n/);

  await a.call('NSSET', 'lim', 'maxsize', '0');
  await a.call('NSSET', 'lim', 'worm', '1');
  t.is(await err(c.call('SET', 'a', 'changed')), 'Namespace is protected by worm mode');
  t.is(await err(c.call('DEL', 'a')), 'Cannot delete a key when namespace is in worm mode');
  t.is(await c.call('SET', 'new', 'x'), 'new');
  await a.call('NSSET', 'lim', 'worm', '0');

  await a.call('NSSET', 'lim', 'lock', '1');
  t.is(await err(c.call('SET', 'z', 'x')), 'Namespace is temporarily locked (read-only)');
  t.is(await c.call('GET', 'new'), 'x');
  await a.call('NSSET', 'lim', 'lock', '0');
  await a.call('NSSET', 'lim', 'freeze', '1');
  t.is(await err(c.call('GET', 'new')), 'Namespace is temporarily frozen (read-write disabled)');
  t.is(await err(c.call('SCAN')), 'Namespace is temporarily frozen (read-write disabled)');
  await a.call('NSSET', 'lim', 'freeze', '0');

  t.is(await err(c.call('FLUSH')), 'Flushing public namespace denied');
  await a.call('NSSET', 'lim', 'password', 'pw');
  await a.call('NSSET', 'lim', 'public', '0');
  t.is(await c.call('FLUSH'), 'OK');
  t.is(await c.call('DBSIZE'), 0);
  t.is(await c.call('GET', 'new'), null);

  t.is(await err(c.call('RELOAD', 'lim')), 'Permission denied');
  t.is(await a.call('RELOAD', 'lim'), 'OK');
  t.is(await err(a.call('RELOAD', 'nope')), 'Namespace not found');
  t.is(await c.call('SET', 'after', 'reload'), 'after', 'clients keep their namespace across RELOAD');
});

test('sequential namespace: SET "" creates 8-byte little-endian ids, updates only', async (t) => {
  const a = await admin(main.port);
  await a.call('NSNEW', 'seq');
  t.is(await a.call('NSSET', 'seq', 'mode', 'seq'), 'OK');
  t.is(await err(a.call('NSSET', 'seq', 'mode', 'fast')), 'Invalid property value (expected: user, seq)');
  await a.call('SELECT', 'seq');
  const k0 = (await a.callBuffer('SET', '', 'first')) as Buffer;
  const k1 = (await a.callBuffer('SET', '', 'second')) as Buffer;
  t.deepEqual(k0, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
  t.deepEqual(k1, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
  t.is(await a.call('GET', k1), 'second');
  t.deepEqual(await a.callBuffer('SET', k0, 'first-updated'), k0);
  t.is(await a.call('GET', k0), 'first-updated');
  t.is(await err(a.call('SET', Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]), 'x')), 'Invalid key, only update authorized');
  t.is(await err(a.call('NSSET', 'seq', 'mode', 'user')), 'Cannot change mode of used namespace');
  t.regex((await a.call('NSINFO', 'seq')) as string, /mode: sequential\n/);
});

test('rotation at 0.5 MiB: SCAN, RSCAN and KEYCUR walk across data file jumps', async (t) => {
  const a = await admin(main.port);
  await a.call('NSNEW', 'rot');
  await a.call('SELECT', 'rot');
  t.is(await err(a.call('SCAN')), 'No more data');
  const value = Buffer.alloc(4000, 7);
  const keys: string[] = [];
  for (let i = 0; i < 300; i++) {
    keys.push(`r${i}`);
    await a.call('SET', `r${i}`, value);
  }
  const files = await readdir(path.join(main.dataDir, 'rot'));
  t.true(files.filter((f) => /^d\d+$/.test(f)).length >= 3, `data files: ${files}`);

  const walk = async (cmd: string) => {
    const seen: string[] = [];
    let cursor: Buffer | undefined;
    for (;;) {
      let page: [Buffer, [Buffer, number, number][]];
      try {
        page = (await (cursor ? a.callBuffer(cmd, cursor) : a.callBuffer(cmd))) as typeof page;
      } catch (e) {
        t.is((e as Error).message, 'No more data');
        return seen;
      }
      t.is(page[0].length, 17);
      for (const [k, size] of page[1]) {
        seen.push(k.toString());
        t.is(size, 4000);
      }
      cursor = page[0];
    }
  };
  t.deepEqual(await walk('SCAN'), keys);
  t.deepEqual(await walk('SCANX'), keys);
  t.deepEqual(await walk('RSCAN'), [...keys].reverse());

  const cur = (await a.callBuffer('KEYCUR', 'r149')) as Buffer;
  t.is(cur.length, 17);
  const page = (await a.callBuffer('SCAN', cur)) as [Buffer, [Buffer, number, number][]];
  t.is(page[1][0][0].toString(), 'r150');
  t.is(await err(a.call('KEYCUR', 'nope')), 'Key not found');
  t.is(await err(a.call('SCAN', 'short')), 'Invalid key format');

  // NSJUMP: the next write lands in a new data file
  const before = (await readdir(path.join(main.dataDir, 'rot'))).length;
  t.is(await err(client(main.port).call('NSJUMP')), 'Permission denied');
  t.is(await a.call('NSJUMP'), 'OK');
  await a.call('SET', 'after-jump', 'x');
  t.is((await readdir(path.join(main.dataDir, 'rot'))).length, before + 1);
  t.regex((await a.call('NSINFO', 'rot')) as string, new RegExp(`data_current_id: ${before}\n`));
});

test('HISTORY walks back through overwrites', async (t) => {
  const a = await admin(main.port);
  await a.call('NSNEW', 'hist');
  await a.call('SELECT', 'hist');
  for (const v of ['v1', 'v2', 'v3']) await a.call('SET', 'h', v);
  const seen: string[] = [];
  let h = (await a.callBuffer('HISTORY', 'h')) as [Buffer | null, Buffer, Buffer];
  for (;;) {
    seen.push(h[2].toString());
    t.regex(h[1].toString(), /^\d+$/);
    if (!h[0]) break;
    h = (await a.callBuffer('HISTORY', 'h', h[0])) as typeof h;
  }
  t.deepEqual(seen, ['v3', 'v2', 'v1']);
  t.is(await err(a.call('HISTORY', 'nope')), 'Key not found');
  t.is(await err(a.call('HISTORY')), 'Invalid arguments');
});

test('WAIT: woken by another client on the same namespace, timeout, refusals', async (t) => {
  const waiter = await admin(main.port);
  const writer = client(main.port);
  await waiter.call('NSNEW', 'waitns');
  await waiter.call('SELECT', 'waitns');
  await writer.call('SELECT', 'waitns');
  const woken = waiter.call('WAIT', 'SET', '3000');
  await new Promise((r) => setTimeout(r, 100));
  await writer.call('SET', 'wake', String(Date.now()));
  t.is(await woken, 'SET');
  const any = waiter.call('WAIT', '*');
  await new Promise((r) => setTimeout(r, 100));
  await writer.call('PING');
  t.is(await any, 'PING');
  const started = Date.now();
  t.is(await err(waiter.call('WAIT', 'DEL', '150')), 'Timeout');
  t.true(Date.now() - started >= 140);
  t.is(await err(waiter.call('WAIT', 'BOGUS')), 'Unknown command to watch');
  t.is(await err(waiter.call('WAIT', 'SET', '50')), 'Invalid timeout');
  t.is(await err(waiter.call('WAIT')), 'Invalid arguments');
});

test('MIRROR and MASTER are admin-only flags', async (t) => {
  t.is(await err(client(main.port).call('MASTER')), 'Permission denied');
  const a = await admin(main.port);
  t.is(await a.call('MASTER'), 'Hello, master');
  t.is(await a.call('MIRROR'), 'Starting mirroring');
});

test('redis-cli: replies and error strings as a shell user sees them', async (t) => {
  const cli = (...args: string[]) => run('redis-cli', ['-p', String(main.port), ...args]).then((r) => r.stdout);
  t.is(await cli('PING'), 'PONG\n');
  t.is(await cli('SET', 'cli-key', 'cli-value'), 'cli-key\n');
  t.is(await cli('GET', 'cli-key'), 'cli-value\n');
  t.is(await cli('SET', 'k'.repeat(256), 'v'), 'Key too large\n\n');
  t.is(await cli('NSNEW', 'x'), 'Permission denied\n\n');
  t.regex(await cli('-a', ADMIN, '--no-auth-warning', 'NSINFO', 'default'), /^# namespace\nname: default\n/);
  t.regex(await cli('-a', ADMIN, '--no-auth-warning', 'NSNEW', 'from-cli'), /^OK/);
});

test('--protect: default is read-only until SELECT default <admin password>', async (t) => {
  const s = await server(['--protect', '--admin', ADMIN]);
  const c = client(s.port);
  t.is(await err(c.call('SET', 'a', 'b')), 'Namespace is in read-only mode');
  t.is(await err(c.call('SELECT', 'default', 'nope')), 'Access denied');
  t.is(await c.call('SELECT', 'default', ADMIN), 'OK');
  t.is(await c.call('SET', 'a', 'b'), 'a');
  t.regex((await c.call('NSINFO', 'default')) as string, /password: yes\n/);
  const bad = runZdbProcess(['--protect', '--port', String(await freePort())]);
  t.is(await bad.exited, 1);
  t.regex(bad.output(), /protected mode only works with admin password/);
});

test('--maxsize limits the default namespace', async (t) => {
  const s = await server(['--maxsize', '8']);
  const c = client(s.port);
  t.is(await c.call('SET', 'a', '1234'), 'a');
  t.is(await err(c.call('SET', 'b', '12345')), 'No space left on this namespace');
  t.regex((await c.call('NSINFO', 'default')) as string, /data_limits_bytes: 8\n/);
});

test('--mode seq: default is sequential and NSSET mode is refused', async (t) => {
  const s = await server(['--mode', 'seq', '--admin', ADMIN]);
  const c = await admin(s.port);
  t.deepEqual(await c.callBuffer('SET', '', 'v'), Buffer.alloc(8));
  await c.call('NSNEW', 'other');
  t.is(await err(c.call('NSSET', 'other', 'mode', 'user')), 'This server instance is configured to use a single runtime mode');
});

test('unix socket, --dualnet and IPv6 listeners', async (t) => {
  const dir = await tempDir();
  dirs.push(dir);
  const sock = path.join(dir, 'zdb.sock');
  const only = await server(['--socket', sock], { tcp: false, dir });
  const u = await RawClient.connectPath(sock);
  u.write('*1\r\n$4\r\nPING\r\n');
  t.is(await u.waitFor('\r\n'), '+PONG\r\n');
  u.close();
  await only.kill();

  const port = await freePort();
  const dual = await server(['--socket', sock, '--dualnet', '--listen', '::', '--port', String(port)], { tcp: false, dir, listeners: 2 });
  const v6 = await RawClient.connect(port, '::1');
  v6.write('*1\r\n$4\r\nPING\r\n');
  t.is(await v6.waitFor('\r\n'), '+PONG\r\n');
  const v4 = await RawClient.connect(port, '127.0.0.1');
  v4.write('*1\r\n$4\r\nPING\r\n');
  t.is(await v4.waitFor('\r\n'), '+PONG\r\n');
  const u2 = await RawClient.connectPath(sock);
  u2.write('*1\r\n$4\r\nPING\r\n');
  t.is(await u2.waitFor('\r\n'), '+PONG\r\n');
  for (const c of [v6, v4, u2]) c.close();
  await dual.kill();
});

test('hooks: ready blocks startup and gets the zdb id; HOOKS lists runs; a failing ready hook stops the server', async (t) => {
  const dir = await tempDir();
  dirs.push(dir);
  const hook = path.join(dir, 'hook.sh');
  const log = path.join(dir, 'hook.log');
  await writeFile(hook, `#!/bin/sh\necho "$@" >> ${log}\n[ "$1" = ready ] && sleep 0.3\nexit 0\n`);
  await chmod(hook, 0o755);
  const s = await server(['--hook', hook, '--admin', ADMIN], { dir });
  const a = await admin(s.port);
  const first = (await readFile(log, 'utf8')).split('\n');
  t.true(first.includes(`ready tcp://127.0.0.1:${s.port}`), first.join('|'));
  await a.call('NSNEW', 'hooked');
  await a.call('NSSET', 'hooked', 'public', '0');
  await new Promise((r) => setTimeout(r, 300));
  const later = (await readFile(log, 'utf8')).split('\n');
  t.true(later.includes(`namespace-created tcp://127.0.0.1:${s.port} hooked`), later.join('|'));
  t.true(later.includes(`namespace-updated tcp://127.0.0.1:${s.port} hooked`), later.join('|'));
  const hooks = (await a.call('HOOKS')) as [string, string[], number, number, number, number][];
  const ready = hooks.find((h) => h[0] === 'ready');
  t.truthy(ready);
  t.deepEqual(ready![1], []);
  t.true(ready![2] > 0);
  t.is(ready![5], 0);
  t.is(await err(client(s.port).call('HOOKS')), 'Permission denied');

  const failing = path.join(dir, 'fail.sh');
  await writeFile(failing, '#!/bin/sh\n[ "$1" = ready ] && exit 3\nexit 0\n');
  await chmod(failing, 0o755);
  const bad = runZdbProcess(['--hook', failing, '--listen', '127.0.0.1', '--port', String(await freePort()), '--data', path.join(dir, 'd2'), '--index', path.join(dir, 'i2')]);
  t.is(await bad.exited, 1);
  t.regex(bad.output(), /ready hook failed/);
});

test('the dataset written by 0-db v2.0.7 is served: every key, overwrite, delete, password, sequential ids', async (t) => {
  const dir = await tempDir();
  dirs.push(dir);
  await cp(path.join(FIXTURE, 'data'), path.join(dir, 'data'), { recursive: true });
  await cp(path.join(FIXTURE, 'index'), path.join(dir, 'index'), { recursive: true });
  const s = await server(['--admin', ADMIN, '--datasize', '524288'], { dir });
  const c = client(s.port);
  const want = (n: number) => (n === 5 ? 'overwritten' : `value-${n}-${'x'.repeat(n * 8)}`);
  const keys = Array.from({ length: 400 }, (_, i) => `key${i + 1}`);
  const values = (await c.call('MGET', ...keys)) as (string | null)[];
  for (let n = 1; n <= 400; n++) {
    if (n === 7) t.is(values[n - 1], null, 'key7 was deleted');
    else if (values[n - 1] !== want(n)) t.fail(`key${n}`);
  }
  t.is(await c.call('DBSIZE'), 399);
  // NSNEW makes public namespaces: with a password, anyone may read, only the password writes
  t.is(await c.call('SELECT', 'secret'), 'OK');
  t.is(await err(c.call('SET', 'hidden', 'no')), 'Namespace is in read-only mode');
  t.is(await c.call('SELECT', 'secret', 's3cr3t'), 'OK');
  t.is(await c.call('GET', 'hidden'), 'yes');
  t.regex((await c.call('NSINFO', 'secret')) as string, /data_limits_bytes: 1048576\n/);
  t.is(await c.call('SELECT', 'seqns'), 'OK');
  for (let i = 0; i < 3; i++) {
    const k = Buffer.alloc(8);
    k.writeUInt32LE(i);
    t.is(await c.call('GET', k), `seqvalue${i + 1}`);
  }
  t.deepEqual(await c.callBuffer('SET', '', 'seqvalue4'), Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]));
});
