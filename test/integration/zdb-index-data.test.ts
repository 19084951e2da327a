// INDEX DIRTY [RESET] and DATA RAW on a real server process, driven by
// ioredis: which index files a write, a delete of an older key and a jump
// mark dirty; the data entries DATA RAW serves at the offsets NSINFO gives;
// and the refusals (admin only, arguments, bad file ids and offsets).
import test from 'ava';
import { Redis } from 'ioredis';
import { crc32c } from '../../zdb/format/index.ts';
import { startZdb, removeDir, type ZdbProcess } from '../helpers/zdb-process.ts';

const ADMIN = 'adminpw';
const clients: Redis[] = [];
let z: ZdbProcess;

function client(): Redis {
  const r = new Redis({ port: z.port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  clients.push(r);
  return r;
}

async function admin(ns: string): Promise<Redis> {
  const r = client();
  await r.call('AUTH', ADMIN);
  await r.call('NSNEW', ns);
  await r.call('SELECT', ns);
  return r;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

async function err(p: Promise<unknown>): Promise<string> {
  try {
    return `no error: ${JSON.stringify(await p)}`;
  } catch (e) {
    return (e as Error).message;
  }
}

/** data_current_offset of the selected namespace, from NSINFO */
async function dataOffset(r: Redis, ns: string): Promise<number> {
  const info = (await r.call('NSINFO', ns)) as string;
  return Number(/data_current_offset: (\d+)/.exec(info)![1]);
}

test.before(async () => {
  z = await startZdb(['--admin', ADMIN]);
});

test.after.always(async () => {
  for (const c of clients) c.disconnect();
  await z.kill('SIGKILL');
  await removeDir(z.dir);
});

test('INDEX DIRTY lists the index files changed in place since the last RESET, as 0-db does (appends do not count)', async (t) => {
  const r = await admin('dirty');
  t.is(await r.call('INDEX', 'DIRTY', 'RESET'), 'OK');
  t.deepEqual(await r.call('INDEX', 'DIRTY'), []);
  await r.call('SET', 'old', 'value');
  t.deepEqual(await r.call('INDEX', 'dirty'), [], 'a new key only appends');
  await r.call('SET', 'old', 'value2');
  t.deepEqual(await r.call('INDEX', 'DIRTY'), [0], 'an overwrite flags the old entry in i0');
  await r.call('NSJUMP');
  await r.call('INDEX', 'DIRTY', 'reset');
  t.deepEqual(await r.call('INDEX', 'DIRTY'), [], 'a reset empties the list');
  await r.call('SET', 'new', 'value');
  t.deepEqual(await r.call('INDEX', 'DIRTY'), []);
  // deleting a key of the older file flags its entry in i0
  t.is(await r.call('DEL', 'old'), 'OK');
  t.deepEqual(await r.call('INDEX', 'DIRTY'), [0]);
  await r.call('SET', 'new', 'value2');
  t.deepEqual(await r.call('INDEX', 'DIRTY'), [0, 1]);
  // the list belongs to the namespace
  const other = await admin('dirty-other');
  await other.call('INDEX', 'DIRTY', 'RESET');
  t.deepEqual(await other.call('INDEX', 'DIRTY'), []);
  t.deepEqual(await r.call('INDEX', 'DIRTY'), [0, 1]);
});

test('INDEX refusals: admin only, missing or unknown subcommands', async (t) => {
  const anon = client();
  t.is(await err(anon.call('INDEX', 'DIRTY')), 'Permission denied');
  const r = await admin('dirty-errors');
  t.is(await err(r.call('INDEX')), 'Missing arguments');
  t.is(await err(r.call('INDEX', '')), 'Invalid argument');
  t.is(await err(r.call('INDEX', 'CLEAN')), 'Unknown INDEX subcommand');
  t.is(await err(r.call('INDEX', 'DIRTY', 'NOW')), 'Unknown INDEX DIRTY subcommand');
  t.is(await err(r.call('INDEX', 'x'.repeat(300))), 'Argument too long');
});

test('DATA RAW serves the data entry at a file id and offset: key, previous, crc, flags, timestamp, payload', async (t) => {
  const r = await admin('raw');
  const first = await dataOffset(r, 'raw');
  t.is(first, 28, 'a fresh data file holds only its 28-byte header');
  const before = Math.floor(Date.now() / 1000);
  await r.call('SET', 'k1', 'hello');
  const second = await dataOffset(r, 'raw');
  await r.call('SET', 'k2', Buffer.from([0, 1, 2, 255]));
  const third = await dataOffset(r, 'raw');
  await r.call('DEL', 'k1');

  const one = (await r.callBuffer('DATA', 'RAW', '0', String(first))) as [Buffer, number, Buffer, number, number, Buffer];
  t.is(one[0].toString(), 'k1');
  t.is(one[1], 0, 'the first entry has no previous one');
  t.is(one[2].toString(), hex(crc32c(Buffer.from('hello'))), 'the crc as 0-db sends it: text, 0x and 8 hex digits');
  t.is(one[3], 0);
  t.true(one[4] >= before - 1 && one[4] <= Math.ceil(Date.now() / 1000) + 1);
  t.is(one[5].toString(), 'hello');

  const two = (await r.callBuffer('DATA', 'RAW', '0', String(second))) as [Buffer, number, Buffer, number, number, Buffer];
  t.is(two[0].toString(), 'k2');
  t.is(two[1], first, 'previous points at the entry written before');
  t.is(two[2].toString(), hex(crc32c(Buffer.from([0, 1, 2, 255]))));
  t.deepEqual(two[5], Buffer.from([0, 1, 2, 255]));

  // 0-db answers a deleted entry's place as a failed read
  t.is(await err(r.call('DATA', 'RAW', '0', String(third))), 'Unexpected Internal Error');
});

test('DATA RAW refusals: admin only, arguments, unknown file, offsets outside the written entries', async (t) => {
  const anon = client();
  t.is(await err(anon.call('DATA', 'RAW', '0', '28')), 'Permission denied');
  const r = await admin('raw-errors');
  await r.call('SET', 'k', 'v');
  const end = await dataOffset(r, 'raw-errors');
  t.is(await err(r.call('DATA')), 'Missing arguments');
  t.is(await err(r.call('DATA', 'COOKED', '0', '28')), 'Unknown DATA subcommand');
  t.is(await err(r.call('DATA', 'RAW', '0')), 'Missing arguments');
  t.is(await err(r.call('DATA', 'RAW', '0', '')), 'Invalid argument');
  // numbers are atoll()s, as in 0-db: no digits read as 0, a file id wraps to 32 bits
  t.is(await err(r.call('DATA', 'RAW', '0', 'zero')), 'Unexpected Internal Error', 'offset 0: the file header read as an entry claims 53 MB');
  t.is(await err(r.call('DATA', 'RAW', '0', '4')), 'Invalid Request', 'inside the header: an entry of length 0');
  t.is((await r.call('DATA', 'RAW', 'zero', '28') as unknown[])[0], 'k', 'file id "zero" is d0');
  t.is((await r.call('DATA', 'RAW', '4294967296', '28', 'extra') as unknown[])[0], 'k', 'file 2^32 is d0; extra arguments are ignored');
  t.is(await err(r.call('DATA', 'RAW', '7', '28')), 'Invalid Request', 'no such data file');
  t.is(await err(r.call('DATA', 'RAW', '0', '-1')), 'Unexpected Internal Error');
  t.is(await err(r.call('DATA', 'RAW', '0', String(end))), 'EOF', 'past the last entry');
  t.is(await err(r.call('DATA', 'RAW', '0', '99999999')), 'EOF');
  t.is(await r.call('GET', 'k'), 'v', 'the connection keeps working');
});
