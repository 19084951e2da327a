// An independent 0-db v2 reader for tests, written from the format spec
// (specs/zdb.md) without the codecs in zdb/format: it parses every header and
// entry of a namespace's files, checks every data CRC, and cross-checks the
// index against the data. It throws on the first byte that breaks the spec.
import fs from 'node:fs';
import path from 'node:path';

export interface ReadIndexEntry {
  file: number;
  at: number;
  key: Buffer;
  offset: number;
  length: number;
  previous: number;
  flags: number;
  dataid: number;
  timestamp: number;
  crc: number;
  parentid: number;
  parentoff: number;
}

export interface ReadDataEntry {
  file: number;
  at: number;
  key: Buffer;
  payload: Buffer;
  previous: number;
  crc: number;
  flags: number;
  timestamp: number;
}

export interface ReadNamespace {
  descriptor: { name: string; password: string; maxsize: bigint; flags: number };
  indexHeaders: { version: number; created: bigint; opened: bigint; fileid: number; mode: number }[];
  dataHeaders: { version: number; created: bigint; opened: bigint; fileid: number }[];
  index: ReadIndexEntry[];
  data: ReadDataEntry[];
  /** live key -> payload, replaying the index the way 0-db loads it */
  live: Map<string, Buffer>;
}

function crc32cSpec(buf: Buffer): number {
  // bitwise CRC32C, reflected poly 0x82F63B78, init 0, no final xor
  let c = 0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

function fail(file: string, at: number, what: string): never {
  throw new Error(`${file} @${at}: ${what}`);
}

export function readNamespace(indexRoot: string, dataRoot: string, name: string): ReadNamespace {
  const idir = path.join(indexRoot, name);
  const ddir = path.join(dataRoot, name);
  const d = fs.readFileSync(path.join(idir, 'zdb-namespace'));
  if (d.readUInt32LE(0) !== 1) fail('zdb-namespace', 0, 'version != 1');
  const nlen = d[4];
  const plen = d[5];
  if (d.length !== 15 + nlen + plen) fail('zdb-namespace', 0, `size ${d.length} != 15 + ${nlen} + ${plen}`);
  const descriptor = {
    maxsize: d.readBigUInt64LE(6),
    flags: d[14],
    name: d.subarray(15, 15 + nlen).toString(),
    password: d.subarray(15 + nlen).toString(),
  };
  if ((descriptor.flags & 4) === 0) fail('zdb-namespace', 14, 'extended flag (4) not set');

  const out: ReadNamespace = { descriptor, indexHeaders: [], dataHeaders: [], index: [], data: [], live: new Map() };
  const dataFiles: Buffer[] = [];
  for (let n = 0; fs.existsSync(path.join(ddir, `d${n}`)); n++) {
    const f = `d${n}`;
    const b = fs.readFileSync(path.join(ddir, f));
    if (b.length < 28) fail(f, 0, 'short header');
    if (b.toString('latin1', 0, 4) !== 'DAT0') fail(f, 0, 'magic');
    const h = { version: b.readUInt32LE(4), created: b.readBigUInt64LE(8), opened: b.readBigUInt64LE(16), fileid: b.readUInt32LE(24) };
    if (h.version !== 3) fail(f, 4, `version ${h.version}`);
    if (h.fileid !== n) fail(f, 24, `fileid ${h.fileid}`);
    out.dataHeaders.push(h);
    dataFiles.push(b);
    let at = 28;
    while (at < b.length) {
      if (at + 18 > b.length) fail(f, at, 'torn entry header');
      const idlen = b[at];
      const len = b.readUInt32LE(at + 1);
      const end = at + 18 + idlen + len;
      if (end > b.length) fail(f, at, 'torn entry body');
      const e: ReadDataEntry = {
        file: n,
        at,
        previous: b.readUInt32LE(at + 5),
        crc: b.readUInt32LE(at + 9),
        flags: b[at + 13],
        timestamp: b.readUInt32LE(at + 14),
        key: b.subarray(at + 18, at + 18 + idlen),
        payload: b.subarray(at + 18 + idlen, end),
      };
      if (crc32cSpec(e.payload) !== e.crc) fail(f, at, 'payload crc mismatch');
      if (e.flags & 1 && len !== 0) fail(f, at, 'deleted entry with a payload');
      out.data.push(e);
      at = end;
    }
  }
  // data `previous` chains every entry to the one written before it
  for (let i = 1; i < out.data.length; i++) {
    if (out.data[i].previous !== out.data[i - 1].at) fail(`d${out.data[i].file}`, out.data[i].at, `previous ${out.data[i].previous} != ${out.data[i - 1].at}`);
  }

  for (let n = 0; fs.existsSync(path.join(idir, `i${n}`)); n++) {
    const f = `i${n}`;
    const b = fs.readFileSync(path.join(idir, f));
    if (b.length < 29) fail(f, 0, 'short header');
    if (b.toString('latin1', 0, 4) !== 'IDX0') fail(f, 0, 'magic');
    const h = { version: b.readUInt32LE(4), created: b.readBigUInt64LE(8), opened: b.readBigUInt64LE(16), fileid: b.readUInt32LE(24), mode: b[28] };
    if (h.version !== 4) fail(f, 4, `version ${h.version}`);
    if (h.fileid !== n) fail(f, 24, `fileid ${h.fileid}`);
    out.indexHeaders.push(h);
    let at = 29;
    while (at < b.length) {
      if (at + 34 > b.length) fail(f, at, 'torn entry header');
      const idlen = b[at];
      if (at + 34 + idlen > b.length) fail(f, at, 'torn key');
      const e: ReadIndexEntry = {
        file: n,
        at,
        offset: b.readUInt32LE(at + 1),
        length: b.readUInt32LE(at + 5),
        previous: b.readUInt32LE(at + 9),
        flags: b[at + 13],
        dataid: b.readUInt32LE(at + 14),
        timestamp: b.readUInt32LE(at + 18),
        crc: b.readUInt32LE(at + 22),
        parentid: b.readUInt32LE(at + 26),
        parentoff: b.readUInt32LE(at + 30),
        key: b.subarray(at + 34, at + 34 + idlen),
      };
      // every index entry names a whole data entry with the same key, length and crc
      // dataid 0 means "the data file of this index file" for inserts (0-db
      // v2.0.x); a deleted sequential copy with dataid 0 may point into d0
      const candidates = e.dataid !== 0 ? [e.dataid] : e.flags & 1 ? [n, 0] : [n];
      const problems = candidates.map((id) => {
        const db = dataFiles[id];
        if (!db) return `data file d${id} missing`;
        if (e.offset + 18 + idlen + e.length > db.length) return 'points past its data file';
        if (db[e.offset] !== idlen || db.readUInt32LE(e.offset + 1) !== e.length) return 'data entry header mismatch';
        if (!db.subarray(e.offset + 18, e.offset + 18 + idlen).equals(e.key)) return 'data entry key mismatch';
        if (db.readUInt32LE(e.offset + 9) !== e.crc) return 'data entry crc mismatch';
        return undefined;
      });
      if (!problems.includes(undefined)) fail(f, at, problems.join(', '));
      out.index.push(e);
      at += 34 + idlen;
    }
  }
  if (out.indexHeaders.length !== out.dataHeaders.length) fail(idir, 0, `${out.indexHeaders.length} index files for ${out.dataHeaders.length} data files`);
  for (let i = 1; i < out.index.length; i++) {
    // user mode appends only: each entry's previous is the entry before it (seq overwrites keep theirs)
    if (out.indexHeaders[0].mode === 0 && out.index[i].previous !== out.index[i - 1].at) fail(`i${out.index[i].file}`, out.index[i].at, 'index previous chain broken');
  }
  const mode = out.indexHeaders[0]?.mode ?? 0;
  for (const e of out.index) {
    const k = e.key.toString('latin1');
    if (e.flags & 1) {
      if (mode === 0) out.live.delete(k);
      continue;
    }
    const db = dataFiles[e.dataid || e.file];
    out.live.set(k, Buffer.from(db.subarray(e.offset + 18 + e.key.length, e.offset + 18 + e.key.length + e.length)));
  }
  return out;
}
