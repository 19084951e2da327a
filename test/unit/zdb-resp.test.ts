// RESP2 request parser and reply encoding: split anywhere, binary-safe,
// pipelined, limits enforced on headers, the reference's error texts.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { RequestParser, RespProtocolError, DEFAULT_LIMITS } from '../../zdb/resp/parser.ts';
import { bulk, encodeCommand, error, integer, NIL } from '../../zdb/resp/encoder.ts';
import { ReplyBuffer } from '../../zdb/server/replies.ts';

function parseAll(parser: RequestParser, chunks: Buffer[]): string[][] {
  const out: string[][] = [];
  for (const c of chunks) parser.feed(c, (args) => void out.push(args.map((a) => a.toString('latin1'))));
  return out;
}

function refusal(input: string | Buffer, limits = DEFAULT_LIMITS): string {
  const p = new RequestParser(limits);
  try {
    p.feed(Buffer.from(input), () => {});
  } catch (e) {
    if (e instanceof RespProtocolError) return e.reply;
    throw e;
  }
  return 'accepted';
}

test('one request, pipelined requests', (t) => {
  const p = new RequestParser();
  const two = Buffer.concat([encodeCommand(['SET', 'k', 'v']), encodeCommand(['GET', 'k'])]);
  t.deepEqual(parseAll(p, [two]), [['SET', 'k', 'v'], ['GET', 'k']]);
  t.false(p.pending);
});

test('a request split at every byte boundary parses the same', (t) => {
  const req = Buffer.concat([encodeCommand(['SET', 'key:1', 'a\r\nb$3\r\n*2']), encodeCommand(['PING'])]);
  for (let cut = 1; cut < req.length; cut++) {
    const p = new RequestParser();
    t.deepEqual(parseAll(p, [req.subarray(0, cut), req.subarray(cut)]), [['SET', 'key:1', 'a\r\nb$3\r\n*2'], ['PING']], `cut at ${cut}`);
  }
  const p = new RequestParser();
  const bytes = [...req].map((b) => Buffer.from([b]));
  t.deepEqual(parseAll(p, bytes), [['SET', 'key:1', 'a\r\nb$3\r\n*2'], ['PING']]);
});

test('binary payloads and empty arguments survive', (t) => {
  const value = randomBytes(70000);
  const key = Buffer.from([0, 255, 13, 10, 0]);
  const req = encodeCommand(['SET', key, value]);
  const p = new RequestParser();
  const got: Buffer[][] = [];
  for (let i = 0; i < req.length; i += 1000) p.feed(req.subarray(i, i + 1000), (a) => void got.push(a));
  t.is(got.length, 1);
  t.true(got[0][1].equals(key));
  t.true(got[0][2].equals(value));
  const q = new RequestParser();
  const empty: Buffer[][] = [];
  q.feed(encodeCommand(['SET', '', 'x']), (a) => void empty.push(a));
  t.is(empty[0][1].length, 0);
});

test('the memory of a chunk may be reused once feed() returns: a request split across reads keeps its arguments', (t) => {
  // the server reads every socket into one shared buffer
  const shared = Buffer.alloc(4096);
  const req = encodeCommand(['SET', 'key:1', 'value']);
  for (let cut = 1; cut < req.length; cut++) {
    const p = new RequestParser();
    const got: string[][] = [];
    for (const part of [req.subarray(0, cut), req.subarray(cut)]) {
      part.copy(shared);
      p.feed(shared.subarray(0, part.length), (a) => void got.push(a.map((x) => x.toString('latin1'))));
      shared.fill(0x58);
    }
    t.deepEqual(got, [['SET', 'key:1', 'value']], `cut at ${cut}`);
  }
});

test('arguments that arrive whole are views of the received chunk, not copies', (t) => {
  const chunk = encodeCommand(['GET', 'somekey']);
  const p = new RequestParser();
  let args: Buffer[] = [];
  p.feed(chunk, (a) => void (args = a));
  t.is(args[1].buffer, chunk.buffer);
});

test('header lines are accepted without CR, as the reference reads them', (t) => {
  const p = new RequestParser();
  t.deepEqual(parseAll(p, [Buffer.from('*1\n$4\nPING\r\n')]), [['PING']]);
});

test('malformed requests get the reference error texts', (t) => {
  t.is(refusal('PING\r\n'), 'Malformed request, array expected');
  t.is(refusal('*0\r\n'), 'Missing arguments');
  t.is(refusal('*-3\r\n'), 'Missing arguments');
  t.is(refusal('*1\r\n:5\r\n'), 'Malformed query string');
  t.is(refusal('*1\r\n$-1\r\n'), 'Malformed query string');
  t.is(refusal('*1\r\n$4\r\nPINGxx'), 'Malformed query string');
  t.is(refusal('*1025\r\n'), 'Too many arguments');
  t.is(refusal('*1024\r\n'), 'accepted');
});

test('a payload over 8 MiB is refused on its header, before any body is buffered', (t) => {
  t.is(refusal(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${8 * 1024 * 1024 + 1}\r\n`), 'Payload too big');
  t.is(refusal(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${10 * 1024 * 1024}\r\n`), 'Payload too big');
  t.is(refusal(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${8 * 1024 * 1024}\r\n`), 'accepted');
});

test('an 8 MiB payload in 64 KiB chunks is assembled once', (t) => {
  const value = randomBytes(8 * 1024 * 1024);
  const req = encodeCommand(['SET', 'big', value]);
  const p = new RequestParser();
  const got: Buffer[][] = [];
  for (let i = 0; i < req.length; i += 65536) p.feed(req.subarray(i, i + 65536), (a) => void got.push(a));
  t.is(got.length, 1);
  t.true(got[0][2].equals(value));
});

test('a header without newline longer than the line limit is garbage', (t) => {
  t.is(refusal('*' + '1'.repeat(9000)), 'Malformed request, array expected');
  t.is(refusal('*1\r\n$' + '1'.repeat(9000)), 'Malformed query string');
  t.is(refusal('x'), 'Malformed request, array expected');
});

test('returning false from the callback stops parsing and keeps the rest', (t) => {
  const p = new RequestParser();
  const both = Buffer.concat([encodeCommand(['A']), encodeCommand(['B'])]);
  const got: string[] = [];
  p.feed(both, (a) => {
    got.push(a[0].toString());
    return false;
  });
  t.deepEqual(got, ['A']);
  t.deepEqual(p.takeRest(), encodeCommand(['B']));
});

test('reply encoding', (t) => {
  t.is(error('Key too large'), '-Key too large\r\n');
  t.is(integer(42), ':42\r\n');
  t.is(bulk(null), NIL);
  t.deepEqual(bulk(Buffer.from([1, 2])), Buffer.from('$2\r\n\x01\x02\r\n', 'latin1'));
  t.is(bulk('héllo'), '$6\r\nhéllo\r\n');
});

test('a reply batch keeps order and joins small parts', (t) => {
  const r = new ReplyBuffer();
  t.true(r.empty);
  r.push('+OK\r\n');
  r.pushBulk(Buffer.from([0, 255]));
  const big = randomBytes(5000);
  r.pushBulk(big);
  r.push(':1\r\n');
  const out = Buffer.concat(r.take());
  t.deepEqual(out, Buffer.concat([Buffer.from('+OK\r\n$2\r\n'), Buffer.from([0, 255]), Buffer.from('\r\n$5000\r\n'), big, Buffer.from('\r\n:1\r\n')]));
  t.true(r.empty);
  t.deepEqual(r.take(), []);
});

test('an announced big bulk costs memory in proportion to the bytes received, not to the announced length', (t) => {
  const before = process.memoryUsage().arrayBuffers;
  const parsers: RequestParser[] = [];
  for (let i = 0; i < 200; i++) {
    const p = new RequestParser();
    // 8 MiB announced, one byte of it sent
    p.feed(Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${8 * 1024 * 1024}\r\nx`), () => {});
    parsers.push(p);
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  t.is(parsers.length, 200);
  t.true(grown < 64 * 1024 * 1024, `${Math.round(grown / 1048576)} MiB held for 200 one-byte bodies`);
});

test('a big bulk in chunks of every size is assembled byte for byte', (t) => {
  const value = randomBytes(3 * 1024 * 1024 + 17);
  const req = encodeCommand(['SET', 'big', value, 'tail']);
  for (const step of [1000, 16384, 65536, 1048577]) {
    const p = new RequestParser();
    const got: Buffer[][] = [];
    for (let i = 0; i < req.length; i += step) p.feed(req.subarray(i, i + step), (a) => void got.push(a));
    t.is(got.length, 1);
    t.true(got[0][2].equals(value));
    t.is(got[0][3].toString(), 'tail');
  }
});
