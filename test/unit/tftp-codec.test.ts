import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  decode, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, peekAck, writeDataHeader,
  ErrorCode, TftpDecodeError,
} from '../../boot/tftp/codec.ts';

test('RRQ with options round-trips; names lower-cased, order kept', (t) => {
  const buf = encodeRequest('rrq', 'ipxe/undionly.kpxe', 'OCTET', [['BLKSIZE', '1468'], ['tsize', '0'], ['windowsize', '16']]);
  t.deepEqual(decode(buf), {
    op: 'rrq',
    filename: 'ipxe/undionly.kpxe',
    mode: 'octet',
    options: [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16']],
  });
});

test('RRQ bytes match RFC 1350 layout', (t) => {
  const buf = encodeRequest('rrq', 'a', 'netascii');
  t.deepEqual([...buf], [0, 1, 0x61, 0, ...Buffer.from('netascii'), 0]);
});

test('WRQ decodes as wrq', (t) => {
  const p = decode(encodeRequest('wrq', 'x', 'octet'));
  t.is(p.op, 'wrq');
});

test('DATA, ACK, ERROR, OACK round-trip', (t) => {
  const payload = randomBytes(512);
  const d = decode(encodeData(7, payload));
  t.is(d.op, 'data');
  if (d.op === 'data') {
    t.is(d.block, 7);
    t.true(d.data.equals(payload));
  }
  t.deepEqual(decode(encodeAck(65535)), { op: 'ack', block: 65535 });
  t.deepEqual(decode(encodeError(ErrorCode.UnknownTransferId, 'Unknown transfer ID')), { op: 'error', code: 5, message: 'Unknown transfer ID' });
  t.deepEqual(decode(encodeOack([['blksize', '1468'], ['tsize', '123']])), { op: 'oack', options: [['blksize', '1468'], ['tsize', '123']] });
});

test('block numbers are taken modulo 2^16 when encoding (rollover)', (t) => {
  t.deepEqual(decode(encodeAck(65536)), { op: 'ack', block: 0 });
  const d = decode(encodeData(65537, Buffer.alloc(0)));
  t.true(d.op === 'data' && d.block === 1);
  const out = Buffer.alloc(4);
  writeDataHeader(out, 70000);
  t.deepEqual([...out], [0, 3, (70000 >> 8) & 0xff, 70000 & 0xff]);
});

test('empty DATA (final block of an exact multiple) decodes', (t) => {
  const d = decode(encodeData(3, Buffer.alloc(0)));
  t.true(d.op === 'data' && d.data.length === 0);
});

test('peekAck reads ACKs only', (t) => {
  t.is(peekAck(encodeAck(4242)), 4242);
  t.is(peekAck(Buffer.from([0, 4, 0, 1, 0, 0])), 1, 'padded ACK');
  t.is(peekAck(encodeData(1, Buffer.alloc(4))), undefined);
  t.is(peekAck(Buffer.from([0, 4, 1])), undefined);
  t.is(peekAck(Buffer.alloc(0)), undefined);
});

test('malformed packets throw TftpDecodeError only', (t) => {
  const bad: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([1]),
    Buffer.from([0, 9]),
    Buffer.from([0, 1]),
    Buffer.from([0, 1, 0x61, 0x62]), // file name without NUL
    Buffer.from([0, 1, 0x61, 0]), // no mode
    Buffer.from([0, 1, 0, 0x6f, 0]), // empty file name
    Buffer.from([0, 3, 0]),
    Buffer.from([0, 4, 0]),
    Buffer.from([0, 5, 0]),
  ];
  for (const b of bad) t.throws(() => decode(b), { instanceOf: TftpDecodeError }, `packet ${b.toString('hex')}`);
});

test('dangling option name and padding after a request are ignored', (t) => {
  const base = encodeRequest('rrq', 'f', 'octet', [['blksize', '1024']]);
  const p1 = decode(Buffer.concat([base, Buffer.from('tsize\0')]));
  t.deepEqual(p1.op === 'rrq' && p1.options, [['blksize', '1024']]);
  const p2 = decode(Buffer.concat([base, Buffer.alloc(16)]));
  t.deepEqual(p2.op === 'rrq' && p2.options, [['blksize', '1024']]);
});

test('ERROR without a trailing NUL keeps the message', (t) => {
  t.deepEqual(decode(Buffer.from([0, 5, 0, 1, 0x6e, 0x6f])), { op: 'error', code: 1, message: 'no' });
});

test('encoders cut strings at NUL instead of corrupting the packet', (t) => {
  const p = decode(encodeError(0, 'bad\0tail'));
  t.deepEqual(p, { op: 'error', code: 0, message: 'bad' });
});

test('fuzz: random datagrams never throw anything but TftpDecodeError', (t) => {
  for (let i = 0; i < 20000; i++) {
    const len = i % 64;
    const buf = randomBytes(len);
    // Bias toward valid opcodes so the per-opcode parsers are exercised.
    if (len >= 2 && i % 2 === 0) {
      buf[0] = 0;
      buf[1] = 1 + (i % 6);
    }
    try {
      decode(buf);
    } catch (e) {
      if (!(e instanceof TftpDecodeError)) {
        t.fail(`decode threw ${String(e)} for ${buf.toString('hex')}`);
        return;
      }
    }
  }
  t.pass();
});
