import test from 'ava';
import { ReplyParser, DEFAULT_REPLY_LIMITS, type RespReply } from '../../zdb/resp/client-reply.ts';
import { RespProtocolError } from '../../zdb/resp/parser.ts';

// Replies as a server writes them, with what they must parse to.
const CASES: [string, RespReply][] = [
  ['+OK\r\n', { type: 'simple', text: 'OK' }],
  ['+\r\n', { type: 'simple', text: '' }],
  ['-Namespace not found\r\n', { type: 'error', text: 'Namespace not found' }],
  [':1733356800\r\n', { type: 'integer', value: 1733356800n }],
  [':-9223372036854775808\r\n', { type: 'integer', value: -9223372036854775808n }],
  ['$5\r\nhe\r\no\r\n', { type: 'bulk', value: Buffer.from('he\r\no') }],
  ['$0\r\n\r\n', { type: 'bulk', value: Buffer.alloc(0) }],
  ['$-1\r\n', { type: 'bulk', value: null }],
  ['*-1\r\n', { type: 'array', items: null }],
  ['*0\r\n', { type: 'array', items: [] }],
  [
    '*2\r\n$4\r\n\x00\x01\x02\xff\r\n*1\r\n*2\r\n$1\r\nk\r\n:7\r\n',
    {
      type: 'array',
      items: [
        { type: 'bulk', value: Buffer.from([0, 1, 2, 255]) },
        { type: 'array', items: [{ type: 'array', items: [{ type: 'bulk', value: Buffer.from('k') }, { type: 'integer', value: 7n }] }] },
      ],
    },
  ],
];

test('each reply kind parses to its value', (t) => {
  for (const [wire, want] of CASES) t.deepEqual(new ReplyParser().feed(Buffer.from(wire, 'latin1')), [want], JSON.stringify(wire));
});

test('a stream of replies split at every byte gives the same replies in order', (t) => {
  const wire = Buffer.from(CASES.map(([w]) => w).join(''), 'latin1');
  const want = CASES.map(([, r]) => r);
  for (const step of [1, 2, 3, 7, 64]) {
    const p = new ReplyParser();
    const got: RespReply[] = [];
    for (let i = 0; i < wire.length; i += step) got.push(...p.feed(wire.subarray(i, i + step)));
    t.deepEqual(got, want, `chunks of ${step}`);
    t.is(p.buffered, 0);
  }
});

test('a large bulk in many chunks is parsed once it is whole, and the bytes after it stay buffered', (t) => {
  const value = Buffer.alloc(1 << 20, 0x61);
  const wire = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n+PART')]);
  const p = new ReplyParser();
  const got: RespReply[] = [];
  for (let i = 0; i < wire.length; i += 65536) got.push(...p.feed(wire.subarray(i, i + 65536)));
  t.deepEqual(got, [{ type: 'bulk', value }]);
  t.is(p.buffered, 5);
  t.deepEqual(p.feed(Buffer.from('IAL\r\n')), [{ type: 'simple', text: 'PARTIAL' }]);
});

test('a bulk reply is a copy: reusing the received chunk does not change it', (t) => {
  const chunk = Buffer.from('$3\r\nabc\r\n');
  const [r] = new ReplyParser().feed(chunk);
  chunk.fill(0);
  t.deepEqual(r, { type: 'bulk', value: Buffer.from('abc') });
});

test('limits are refused on the header, before the payload arrives', (t) => {
  const limits = { ...DEFAULT_REPLY_LIMITS, maxBulk: 10, maxItems: 3, maxLine: 16, maxDepth: 2 };
  const refused = (wire: string, message: RegExp) => {
    const e = t.throws(() => new ReplyParser(limits).feed(Buffer.from(wire)), { instanceOf: RespProtocolError }, wire);
    t.regex(e!.message, message);
  };
  refused('$11\r\n', /bulk reply of 11 bytes, over the limit of 10/);
  refused('*4\r\n', /array reply of 4 items, over the limit of 3/);
  refused('*1\r\n*1\r\n*1\r\n', /nested deeper than 2/);
  refused('+' + 'x'.repeat(17), /longer than 16 bytes/);
  refused('-' + 'x'.repeat(20) + '\r\n', /longer than 16 bytes/);
  // at the limits, accepted
  t.is(new ReplyParser(limits).feed(Buffer.from('$10\r\n0123456789\r\n*3\r\n:1\r\n:2\r\n*1\r\n:3\r\n')).length, 2);
});

test('malformed replies are refused with a typed error', (t) => {
  for (const wire of ['?what\r\n', '+OK\n', ':12x\r\n', '$abc\r\n', '$3\r\nabcd\r\n', '*1x\r\n']) {
    t.throws(() => new ReplyParser().feed(Buffer.from(wire)), { instanceOf: RespProtocolError }, JSON.stringify(wire));
  }
});
