import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DATA_ENTRY_SIZE,
  DATA_HEADER_SIZE,
  decodeCursor,
  decodeDataHeader,
  decodeIndexHeader,
  decodeNsDescriptor,
  encodeCursor,
  encodeDataEntry,
  encodeDataHeader,
  encodeIndexEntry,
  encodeIndexHeader,
  encodeNsDescriptor,
  INDEX_ENTRY_SIZE,
  INDEX_HEADER_SIZE,
  readDataEntryHeader,
  readIndexEntry,
  ZdbFormatError,
} from '../../zdb/format/index.ts';

const FIX = fileURLToPath(new URL('../fixtures/zdb', import.meta.url));
const V2 = path.join(FIX, 'written-by-0db-v2.0.7');
const read = (...p: string[]) => fs.readFileSync(path.join(...p));

test('sizes are the code sizes of 0-db v2 (u32 file ids), not the README ones', (t) => {
  t.is(INDEX_HEADER_SIZE, 29);
  t.is(INDEX_ENTRY_SIZE, 34);
  t.is(DATA_HEADER_SIZE, 28);
  t.is(DATA_ENTRY_SIZE, 18);
});

test('index headers of the fixture decode and re-encode byte for byte', (t) => {
  for (const [ns, file, fileId, mode] of [
    ['default', 'i0', 0, 0],
    ['default', 'i1', 1, 0],
    ['seqns', 'i0', 0, 1],
  ] as const) {
    const raw = read(V2, 'index', ns, file);
    const h = decodeIndexHeader(raw);
    t.like(h, { version: 4, fileId, mode });
    t.deepEqual(encodeIndexHeader(h), raw.subarray(0, 29));
  }
  const pool = read(FIX, 'pool_layout/index/test/i0');
  t.like(decodeIndexHeader(pool), { created: 0x61b2087a, opened: 0x61b2087a, fileId: 0, mode: 0 });
  t.deepEqual(encodeIndexHeader(decodeIndexHeader(pool)), pool);
});

test('legacy zdb-index-00000 header (27 bytes, version 2) is refused', (t) => {
  const legacy = read(FIX, 'zdb-index-00000');
  t.is(legacy.readUInt32LE(4), 2);
  t.throws(() => decodeIndexHeader(legacy), { instanceOf: ZdbFormatError, message: /truncated: 27 of 29/ });
  // even padded to a v2 header size it is refused for its version
  t.throws(() => decodeIndexHeader(Buffer.concat([legacy, Buffer.alloc(2)])), { message: /unsupported version 2/ });
});

test('wrong magic and short headers are refused', (t) => {
  const bad = Buffer.from(read(V2, 'index/default/i0').subarray(0, 29));
  bad.write('XXXX', 0, 'latin1');
  t.throws(() => decodeIndexHeader(bad), { message: /wrong magic/ });
  t.throws(() => decodeIndexHeader(bad.subarray(0, 20)), { message: /truncated/ });
  t.throws(() => decodeDataHeader(Buffer.from('DAT0')), { message: /truncated/ });
});

test('index entries of the fixture decode and re-encode byte for byte', (t) => {
  const raw = read(V2, 'index/default/i1');
  let at = 29;
  let n = 0;
  while (at < raw.length) {
    const e = readIndexEntry(raw, at);
    if (!e) return t.fail(`torn at ${at}`);
    t.deepEqual(encodeIndexEntry(e), raw.subarray(at, at + 34 + e.key.length));
    at += 34 + e.key.length;
    n++;
  }
  t.is(at, raw.length);
  t.is(n, 44); // key358..key400, then the overwrite of key5
  const last = readIndexEntry(raw, raw.length - 38);
  t.like(last, { offset: 0x2031a, length: 11, flags: 0, dataId: 1, crc: 0x31d5ebdd, parentId: 0, parentOffset: 181 });
  t.is(last?.key.toString(), 'key5');
});

test('a torn index entry reads as undefined, never as a shorter entry', (t) => {
  const raw = read(V2, 'index/secret/i0');
  t.truthy(readIndexEntry(raw, 29));
  for (let cut = 29; cut < raw.length; cut++) t.is(readIndexEntry(raw.subarray(0, cut), 29), undefined);
});

test('data header and entries of the fixture decode and re-encode', (t) => {
  const raw = read(V2, 'data/secret/d0');
  t.like(decodeDataHeader(raw), { version: 3, fileId: 0 });
  t.deepEqual(encodeDataHeader(decodeDataHeader(raw)), raw.subarray(0, 28));
  const h = readDataEntryHeader(raw, 28);
  t.like(h, { keyLength: 6, length: 3, previous: 0, crc: 0x74efd1a8, flags: 0 });
  const rebuilt = encodeDataEntry({ previous: 0, crc: h!.crc, flags: 0, timestamp: h!.timestamp }, Buffer.from('hidden'), Buffer.from('yes'));
  t.deepEqual(rebuilt, raw.subarray(28));
  // the DEL marker of key7: empty, flagged deleted, crc 0
  const d1 = read(V2, 'data/default/d1');
  const del = readDataEntryHeader(d1, d1.length - 22);
  t.like(del, { keyLength: 4, length: 0, crc: 0, flags: 1 });
});

test('namespace descriptors: fixture and zos pool layout', (t) => {
  const secret = read(V2, 'index/secret/zdb-namespace');
  t.deepEqual(decodeNsDescriptor(secret), { name: 'secret', password: 's3cr3t', maxsize: 1048576n, public: true, worm: false });
  t.deepEqual(encodeNsDescriptor(decodeNsDescriptor(secret)), secret);
  const def = read(V2, 'index/default/zdb-namespace');
  t.deepEqual(encodeNsDescriptor({ name: 'default', password: '', maxsize: 0n, public: true, worm: false }), def);
  const pool = read(FIX, 'pool_layout/index/test/zdb-namespace');
  t.deepEqual(decodeNsDescriptor(pool), { name: 'test', password: 'password', maxsize: 10240n, public: true, worm: false });
  t.deepEqual(read(FIX, 'zdb-namespace.v2'), pool);
  t.is(encodeNsDescriptor({ name: 'w', password: '', maxsize: 0n, public: false, worm: true })[14], 0x06);
});

test('namespace descriptors keep a maxsize past 2^53 exactly (0-db stores NSSET maxsize -1 as 2^64 - 1)', (t) => {
  for (const maxsize of [(1n << 64n) - 1n, (1n << 63n) - 1n, (1n << 53n) + 1n]) {
    const b = encodeNsDescriptor({ name: 'big', password: '', maxsize, public: true, worm: false });
    t.is(b.readBigUInt64LE(6), maxsize);
    t.is(decodeNsDescriptor(b).maxsize, maxsize);
    t.deepEqual(encodeNsDescriptor(decodeNsDescriptor(b)), b);
  }
});

test('scan cursor is the packed 17-byte index_bkey_t', (t) => {
  const c = { keyLength: 4, fileId: 1, length: 11, indexOffset: 1749, crc: 0x31d5ebdd };
  const b = encodeCursor(c);
  t.is(b.length, 17);
  t.deepEqual(b, Buffer.from('04' + '01000000' + '0b000000' + 'd5060000' + 'ddebd531', 'hex'));
  t.deepEqual(decodeCursor(b), c);
  t.is(decodeCursor(Buffer.alloc(16)), undefined);
});
