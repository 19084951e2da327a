// Which BLAKE2b-256 and which Snappy library the flist chunk pipeline uses,
// measured: BLAKE2b-256 of hash-wasm (WebAssembly), @noble/hashes and blakejs
// (plain JS); Snappy raw compress/decompress of snappy (native, prebuilt) and
// snappyjs (plain JS); AES-256-GCM of node:crypto for scale. The data is
// real files (/usr/bin, then /usr/share) cut into the pipeline's 512 KiB
// chunks. Every library is checked first: the hashes of all three agree with
// a known value and with each other, and each Snappy library decompresses
// what the other compressed. Each figure is the median of --rounds passes,
// the libraries taking turns within a round; MB/s of wall time and of the
// process's CPU time (steadier on a shared machine) are printed. Then the
// whole pipeline (flist/chunk.ts) encoding the same chunks in this thread
// and on the worker pool (flist/chunk-pool.ts), one thread per core. Last,
// node:sqlite: writing and walking a `.fl` of --entries files (one block each).
//   node bench/flist-libs.ts [--mib 64] [--rounds 5] [--entries 100000]
import { createCipheriv } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBLAKE2b } from 'hash-wasm';
import { blake2b as nobleBlake2b } from '@noble/hashes/blake2.js';
import blakejs from 'blakejs';
import { compressSync, uncompressSync } from 'snappy';
import snappyjs from 'snappyjs';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { createChunkCodec } from '../flist/chunk.ts';
import { FlReader, FlWriter } from '../flist/fl-file.ts';
import { ChunkPool } from '../flist/chunk-pool.ts';

const { values } = parseBenchArgs('bench/flist-libs.ts', {
  options: { mib: { type: 'string', default: '64' }, rounds: { type: 'string', default: '5' }, entries: { type: 'string', default: '100000' } },
});
const mib = Number(values.mib);
const rounds = Number(values.rounds);
const entries = Number(values.entries);
if (![mib, rounds, entries].every((n) => Number.isInteger(n) && n >= 1)) {
  console.error('bench/flist-libs.ts: --mib, --rounds and --entries take positive integers');
  process.exit(2);
}

const CHUNK = 512 * 1024;

/** Regular files under the roots, in sorted order, until `bytes` are read; cut into 512 KiB chunks (the tail of each file is a short chunk, as in a pack). */
function corpus(roots: string[], bytes: number): Buffer[] {
  const chunks: Buffer[] = [];
  let total = 0;
  const walk = (dir: string): boolean => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return false;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      let st;
      try {
        st = statSync(p, { throwIfNoEntry: false });
      } catch {
        continue;
      }
      if (st === undefined) continue;
      if (st.isDirectory()) {
        if (walk(p)) return true;
      } else if (st.isFile() && st.size > 0) {
        let data: Buffer;
        try {
          data = readFileSync(p);
        } catch {
          continue;
        }
        for (let o = 0; o < data.length; o += CHUNK) chunks.push(data.subarray(o, o + CHUNK));
        total += data.length;
        if (total >= bytes) return true;
      }
    }
    return false;
  };
  for (const root of roots) if (walk(root)) break;
  return chunks;
}

const chunks = corpus(['/usr/bin', '/usr/share'], mib * 1024 * 1024);
const plainBytes = chunks.reduce((n, c) => n + c.length, 0);

const wasm = await createBLAKE2b(256);
const hashers: Record<string, (b: Buffer) => Uint8Array> = {
  'hash-wasm': (b) => {
    wasm.init();
    wasm.update(b);
    return wasm.digest('binary');
  },
  '@noble/hashes': (b) => nobleBlake2b(b, { dkLen: 32 }),
  blakejs: (b) => blakejs.blake2b(b, undefined, 32),
};
const compressors: Record<string, { compress: (b: Buffer) => Uint8Array; uncompress: (b: Uint8Array) => Uint8Array }> = {
  snappy: { compress: (b) => compressSync(b), uncompress: (b) => uncompressSync(b) as Buffer },
  snappyjs: { compress: (b) => snappyjs.compress(b), uncompress: (b) => snappyjs.uncompress(b) },
};

function check(): void {
  // blake2b-256("abc"), from python3's hashlib.blake2b(digest_size=32).
  const abc = 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319';
  for (const [name, h] of Object.entries(hashers)) {
    if (Buffer.from(h(Buffer.from('abc'))).toString('hex') !== abc) throw new Error(`${name}: wrong blake2b-256 of "abc"`);
  }
  for (const c of chunks.slice(0, 16)) {
    const want = Buffer.from(hashers['hash-wasm'](c));
    for (const [name, h] of Object.entries(hashers)) if (!want.equals(h(c))) throw new Error(`${name}: disagrees on a chunk`);
    for (const [from, a] of Object.entries(compressors)) {
      for (const [to, b] of Object.entries(compressors)) {
        if (!Buffer.from(b.uncompress(a.compress(c))).equals(c)) throw new Error(`${to} does not decompress what ${from} compressed`);
      }
    }
  }
}

interface Sample {
  wall: number;
  cpu: number;
}

async function time(fn: () => void | Promise<void>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

check();
const compressed: Record<string, Uint8Array[]> = {};
for (const [name, c] of Object.entries(compressors)) compressed[name] = chunks.map((b) => c.compress(b));
const compressedBytes = compressed.snappy.reduce((n, c) => n + c.length, 0);

const cases: Record<string, { bytes: number; run: () => void | Promise<void> }> = {};
for (const [name, h] of Object.entries(hashers)) cases[`blake2b-256 ${name}`] = { bytes: plainBytes, run: () => chunks.forEach(h) };
for (const [name, c] of Object.entries(compressors)) {
  cases[`snappy compress ${name}`] = { bytes: plainBytes, run: () => chunks.forEach(c.compress) };
  cases[`snappy uncompress ${name}`] = { bytes: plainBytes, run: () => compressed[name].forEach(c.uncompress) };
}
const key = Buffer.alloc(32, 7);
cases['aes-256-gcm node:crypto'] = {
  bytes: compressedBytes,
  run: () => {
    for (const c of compressed.snappy) {
      const cipher = createCipheriv('aes-256-gcm', key, key.subarray(0, 12));
      cipher.update(c);
      cipher.final();
      cipher.getAuthTag();
    }
  },
};

const codec = await createChunkCodec();
const pool = await ChunkPool.create();
cases['pipeline encode, 1 thread'] = { bytes: plainBytes, run: () => chunks.forEach((c) => codec.encode(c)) };
cases[`pipeline encode, pool of ${pool.threads}`] = {
  bytes: plainBytes,
  run: async () => {
    for await (const _ of pool.encodeAll(chunks));
  },
};

const samples = new Map<string, Sample[]>(Object.keys(cases).map((k) => [k, []]));
const names = Object.keys(cases);
for (const name of names) await cases[name].run(); // warm-up: JIT, WebAssembly tiers
for (let r = 0; r < rounds; r++) {
  const order = names.map((_, i) => names[(i + r) % names.length]);
  for (const name of order) samples.get(name)!.push(await time(cases[name].run));
}
await pool.close();

console.log(`${chunks.length} chunks of up to 512 KiB, ${(plainBytes / 1048576).toFixed(1)} MiB from /usr/bin and /usr/share (snappy ratio ${(compressedBytes / plainBytes).toFixed(3)}); median of ${rounds} rounds`);
console.log(`${'case'.padEnd(32)} ${'MB/s wall'.padStart(10)} ${'MB/s cpu'.padStart(10)}`);
for (const name of names) {
  const s = samples.get(name)!;
  const mb = cases[name].bytes / 1e6;
  console.log(`${name.padEnd(32)} ${(mb / median(s.map((x) => x.wall))).toFixed(0).padStart(10)} ${(mb / median(s.map((x) => x.cpu))).toFixed(0).padStart(10)}`);
}

// node:sqlite: write and walk a .fl of `entries` files in directories of 100.
const dir = mkdtempSync(path.join(tmpdir(), 'flist-libs-'));
try {
  const fl = path.join(dir, 'bench.fl');
  const meta = { uid: 0, gid: 0, size: 4096, mtime: 1, ctime: 1, rdev: 0 };
  const build = await time(() => {
    const w = new FlWriter({ ...meta, mode: 0o40755 });
    let d = w.root;
    for (let i = 0; i < entries; i++) {
      if (i % 100 === 0) d = w.add(w.root, `d${i / 100}`, { ...meta, mode: 0o40755 });
      const f = w.add(d, `f${i}`, { ...meta, mode: 0o100644 });
      w.addBlock(f, Buffer.alloc(32, i & 255), Buffer.alloc(32, (i >> 8) & 255));
    }
    w.write(fl);
  });
  let seen = 0;
  const walk = await time(() => {
    const r = FlReader.open(fl);
    for (const _ of r.walk()) seen++;
    r.close();
  });
  const kb = statSync(fl).size / 1024;
  console.log(`.fl of ${entries} files (${seen} entries, ${kb.toFixed(0)} KiB): write ${(entries / build.wall).toFixed(0)} entries/s (cpu ${(entries / build.cpu).toFixed(0)}), walk ${(seen / walk.wall).toFixed(0)} entries/s (cpu ${(seen / walk.cpu).toFixed(0)})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
