// Mutation fuzzing of the DHCP codec. Properties, for every input:
//  - decodeDhcp throws nothing but DhcpDecodeError;
//  - whatever decodes re-encodes without throwing anything but DhcpEncodeError,
//    the typed accessors never throw, and when it encodes, decoding that gives
//    the same packet and encoding again gives the same bytes.
// Deterministic: DHCP_FUZZ_SEED=<n> replays a run, DHCP_FUZZ_SEED=random picks
// a new seed; DHCP_FUZZ_ITERATIONS changes the count. The seed is in every
// failure message.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { decodeDhcp, encodeDhcp, DhcpDecodeError, DhcpEncodeError, macOf, messageType } from '../../boot/dhcp/codec.ts';
import type { DhcpPacket } from '../../boot/dhcp/codec.ts';
import * as o from '../../boot/dhcp/options.ts';

const envSeed = process.env.DHCP_FUZZ_SEED;
const SEED = envSeed === 'random' ? (Math.random() * 2 ** 32) >>> 0 : envSeed ? Number(envSeed) >>> 0 : 0x5eed_d4c9;
const ITERATIONS = Number(process.env.DHCP_FUZZ_ITERATIONS ?? 120_000);

/** mulberry32: small, fast, good enough for fuzzing. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'dhcp');
const golden = readdirSync(fixtures).filter((f) => f.endsWith('.bin')).sort().map((f) => readFileSync(join(fixtures, f)));

/** Encoded packets that exercise overload and RFC 3396 splits, as extra seeds. */
function synthetic(): Buffer[] {
  const chaddr = Buffer.alloc(16);
  Buffer.from('525400abcdef', 'hex').copy(chaddr);
  const base: DhcpPacket = {
    op: 2, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '10.0.0.2', siaddr: '10.0.0.1', giaddr: '0.0.0.0',
    chaddr, sname: '', file: '', options: new Map(),
  };
  const long = Buffer.from(Array.from({ length: 480 }, (_, i) => i & 0xff));
  return [
    encodeDhcp({ ...base, options: new Map([[53, Buffer.from([5])], [43, long]]) }),
    encodeDhcp({ ...base, options: new Map([[53, Buffer.from([2])], [43, Buffer.alloc(250, 1)], [17, Buffer.alloc(100, 2)], [15, Buffer.alloc(60, 3)], [12, Buffer.alloc(40, 4)]]) }),
    encodeDhcp({ ...base, file: 'x.efi', options: new Map([[53, Buffer.from([2])], [43, Buffer.alloc(255, 1)], [12, Buffer.alloc(40, 4)], [80, Buffer.alloc(0)]]) }),
    encodeDhcp({ ...base, options: new Map([[53, Buffer.from([5])], [43, long]]) }, { maxSize: 1500 }),
  ];
}

type Mutator = (r: () => number, corpus: Buffer[]) => Buffer;
const int = (r: () => number, n: number) => Math.floor(r() * n);
const pick = <T>(r: () => number, xs: T[]): T => xs[int(r, xs.length)];
const randomBytes = (r: () => number, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

/** A valid header and cookie followed by random TLVs (random codes, lengths that may lie, option 52). */
function randomOptions(r: () => number): Buffer {
  const b = Buffer.alloc(240 + int(r, 400));
  randomBytes(r, 236).copy(b);
  if (r() < 0.7) b[2] = int(r, 17);
  b.writeUInt32BE(0x63825363, 236);
  const areas: [number, number][] = [[240, b.length], [108, 236], [44, 108]];
  for (const [start, end] of areas) {
    let i = start;
    while (i < end - 1) {
      const roll = r();
      const code = roll < 0.1 ? 0 : roll < 0.15 ? 52 : roll < 0.2 ? 255 : 1 + int(r, 254);
      b[i++] = code;
      if (code === 0 || code === 255) continue;
      const len = code === 52 && r() < 0.8 ? 1 : int(r, 40);
      b[i++] = r() < 0.9 ? len : int(r, 256);
      for (let k = 0; k < len && i < end; k++) b[i++] = code === 52 ? int(r, 5) : int(r, 256);
    }
  }
  return b;
}

const mutators: [string, Mutator][] = [
  ['bitflip', (r, c) => {
    const b = Buffer.from(pick(r, c));
    for (let n = 1 + int(r, 8); n > 0; n--) b[int(r, b.length)] ^= 1 << int(r, 8);
    return b;
  }],
  ['truncate', (r, c) => {
    const b = pick(r, c);
    return Buffer.from(b.subarray(0, int(r, b.length + 1)));
  }],
  ['option-length', (r, c) => {
    const b = Buffer.from(pick(r, c));
    for (let n = 1 + int(r, 3); n > 0; n--) b[240 + int(r, b.length - 240)] = r() < 0.5 ? int(r, 256) : pick(r, [0, 1, 2, 52, 255, 254]);
    return b;
  }],
  ['overload', (r, c) => {
    // Point option 52 at file/sname areas holding random or real option bytes.
    const b = Buffer.from(pick(r, c));
    const at = 240 + int(r, Math.max(1, b.length - 243));
    b[at] = 52;
    b[at + 1] = r() < 0.8 ? 1 : int(r, 4);
    b[at + 2] = int(r, 5);
    const src = pick(r, c);
    src.copy(b, r() < 0.5 ? 108 : 44, 240 + int(r, src.length - 240), src.length);
    b.writeUInt32BE(0x63825363, 236);
    return b;
  }],
  ['splice', (r, c) => {
    const a = pick(r, c);
    const z = pick(r, c);
    return Buffer.concat([a.subarray(0, int(r, a.length + 1)), z.subarray(int(r, z.length + 1))]);
  }],
  ['insert-delete', (r, c) => {
    const b = pick(r, c);
    const at = 240 + int(r, b.length - 239);
    return r() < 0.5
      ? Buffer.concat([b.subarray(0, at), randomBytes(r, 1 + int(r, 8)), b.subarray(at)])
      : Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 8)))]);
  }],
  ['random-bytes', (r) => {
    const b = randomBytes(r, int(r, 700));
    if (b.length >= 240 && r() < 0.8) b.writeUInt32BE(0x63825363, 236);
    return b;
  }],
  ['random-options', (r) => randomOptions(r)],
];

function withoutOverload(p: DhcpPacket): unknown {
  const options = [...p.options].filter(([k]) => k !== 52).sort(([a], [b]) => a - b);
  return { ...p, options };
}

function exerciseAccessors(p: DhcpPacket): void {
  macOf(p);
  messageType(p);
  for (const code of [1, 3, 12, 43, 51, 53, 55, 57, 60, 61, 77, 93, 94, 97, 175]) {
    o.optString(p, code);
    o.optIp(p, code);
    o.optIps(p, code);
    o.optU8(p, code);
    o.optU16(p, code);
    o.optU32(p, code);
    o.optU16List(p, code);
    o.optEncapsulated(p, code);
  }
  o.optUserClass(p);
  o.optUuid(p);
  o.optParamList(p);
  o.optClientNdi(p);
}

test(`fuzz: ${ITERATIONS} mutated packets (seed ${SEED}; replay with DHCP_FUZZ_SEED=${SEED})`, (t) => {
  const r = prng(SEED);
  const corpus = [...golden, ...synthetic()];
  const stats = new Map<string, { decoded: number; rejected: number; encoded: number; tooBig: number }>();
  const started = Date.now();
  const fail = (i: number, kind: string, input: Buffer, what: string) =>
    t.fail(`seed ${SEED} iteration ${i} (${kind}): ${what}\ninput ${input.toString('hex')}`);

  for (let i = 0; i < ITERATIONS; i++) {
    const [kind, mutate] = mutators[i % mutators.length];
    const input = mutate(r, corpus);
    let s = stats.get(kind);
    if (!s) stats.set(kind, (s = { decoded: 0, rejected: 0, encoded: 0, tooBig: 0 }));

    let p: DhcpPacket;
    try {
      p = decodeDhcp(input);
    } catch (e) {
      if (!(e instanceof DhcpDecodeError)) return fail(i, kind, input, `decode threw ${String((e as Error)?.stack ?? e)}`);
      s.rejected++;
      continue;
    }
    s.decoded++;
    try {
      exerciseAccessors(p);
    } catch (e) {
      return fail(i, kind, input, `an accessor threw ${String((e as Error)?.stack ?? e)}`);
    }
    for (const maxSize of [576, 1500]) {
      let out: Buffer;
      try {
        out = encodeDhcp(p, { maxSize });
      } catch (e) {
        if (!(e instanceof DhcpEncodeError)) return fail(i, kind, input, `encode threw ${String((e as Error)?.stack ?? e)}`);
        s.tooBig++;
        continue;
      }
      s.encoded++;
      if (out.length > maxSize) return fail(i, kind, input, `encoded ${out.length} bytes, over maxSize ${maxSize}`);
      let back: DhcpPacket;
      try {
        back = decodeDhcp(out);
      } catch (e) {
        return fail(i, kind, input, `our own encoding does not decode: ${String(e)}\nencoded ${out.toString('hex')}`);
      }
      if (!isDeepStrictEqual(withoutOverload(back), withoutOverload(p))) {
        return fail(i, kind, input, `decode(encode(p)) differs from p\nencoded ${out.toString('hex')}`);
      }
      const again = encodeDhcp(back, { maxSize });
      if (!again.equals(out)) return fail(i, kind, input, `encode(decode(encode(p))) is not byte-identical\nfirst  ${out.toString('hex')}\nsecond ${again.toString('hex')}`);
    }
  }
  const ms = Date.now() - started;
  t.log(`seed ${SEED}, ${ITERATIONS} inputs in ${ms} ms`);
  for (const [kind, s] of stats) t.log(kind, s);
  // The run is only meaningful if inputs reach every path: rejected, decoded, re-encoded and too big to re-encode.
  const total = [...stats.values()].reduce(
    (a, s) => ({ decoded: a.decoded + s.decoded, rejected: a.rejected + s.rejected, encoded: a.encoded + s.encoded, tooBig: a.tooBig + s.tooBig }),
    { decoded: 0, rejected: 0, encoded: 0, tooBig: 0 },
  );
  t.true(total.decoded > ITERATIONS / 5, `decoded ${total.decoded}`);
  t.true(total.rejected > ITERATIONS / 5, `rejected ${total.rejected}`);
  t.true(total.encoded > ITERATIONS / 5, `re-encoded ${total.encoded}`);
  t.true(total.tooBig > 0, `too big to re-encode ${total.tooBig}`);
  const overloaded = stats.get('random-options')!.decoded;
  t.true(overloaded > 100, `random-options decoded ${overloaded}`);
});
