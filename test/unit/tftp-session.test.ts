import test from 'ava';
import { ReadSession, negotiate, MAX_BACKOFF_MS } from '../../boot/tftp/session.ts';
import type { SessionOutput } from '../../boot/tftp/session.ts';
import type { TftpOption } from '../../boot/tftp/codec.ts';

type Call =
  | ['oack', TftpOption[]]
  | ['blocks', number, number]
  | ['arm', number]
  | ['finish']
  | ['fail', string, number | undefined];

function recorder(): { out: SessionOutput; calls: Call[]; take(): Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    out: {
      sendOack: (o) => calls.push(['oack', [...o]]),
      sendBlocks: (f, c) => calls.push(['blocks', f, c]),
      armTimer: (ms) => calls.push(['arm', ms]),
      finish: () => calls.push(['finish']),
      fail: (reason, error) => calls.push(['fail', reason, error?.code]),
    },
    take: () => calls.splice(0),
  };
}

const limits = { mtu: 1500, defaultTimeoutMs: 1000 };

function session(size: number, opts: { blksize?: number; windowsize?: number; retries?: number; firstRetries?: number; oack?: TftpOption[] } = {}) {
  const r = recorder();
  const s = new ReadSession(
    { size, blksize: opts.blksize ?? 512, windowsize: opts.windowsize ?? 1, timeoutMs: 1000, retries: opts.retries ?? 3, firstRetries: opts.firstRetries, oack: opts.oack ?? [] },
    r.out,
  );
  return { s, r };
}

// --- negotiation -----------------------------------------------------------

test('no options: RFC 1350 defaults, no OACK', (t) => {
  t.deepEqual(negotiate([], 100, limits), { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: [] });
});

test('blksize is clamped to MTU - 32 and to 65464', (t) => {
  t.is(negotiate([['blksize', '1468']], 0, limits).blksize, 1468);
  t.is(negotiate([['blksize', '9000']], 0, limits).blksize, 1468);
  t.deepEqual(negotiate([['blksize', '9000']], 0, limits).oack, [['blksize', '1468']]);
  t.is(negotiate([['blksize', '65464']], 0, { mtu: 65536, defaultTimeoutMs: 1000 }).blksize, 65464);
  t.is(negotiate([['blksize', '100000']], 0, { mtu: 65536, defaultTimeoutMs: 1000 }).blksize, 65464);
  t.is(negotiate([['blksize', '1024']], 0, limits).blksize, 1024);
});

test('invalid blksize is ignored, not acknowledged', (t) => {
  for (const v of ['7', '0', 'abc', '', '-5', '1e3']) {
    const n = negotiate([['blksize', v]], 0, limits);
    t.is(n.blksize, 512, v);
    t.deepEqual(n.oack, [], v);
  }
});

test('tsize is answered with the file size', (t) => {
  t.deepEqual(negotiate([['tsize', '0']], 123456789, limits).oack, [['tsize', '123456789']]);
});

test('timeout 1-255 s is echoed and used; outside is ignored', (t) => {
  const n = negotiate([['timeout', '3']], 0, limits);
  t.is(n.timeoutMs, 3000);
  t.deepEqual(n.oack, [['timeout', '3']]);
  for (const v of ['0', '256', 'x']) {
    const m = negotiate([['timeout', v]], 0, limits);
    t.is(m.timeoutMs, 1000);
    t.deepEqual(m.oack, []);
  }
});

test('windowsize 1-64, larger requests answered with 64, 0 ignored', (t) => {
  t.is(negotiate([['windowsize', '16']], 0, limits).windowsize, 16);
  const big = negotiate([['windowsize', '65535']], 0, limits);
  t.is(big.windowsize, 64);
  t.deepEqual(big.oack, [['windowsize', '64']]);
  t.deepEqual(negotiate([['windowsize', '0']], 0, limits).oack, []);
});

test('unknown options ignored, only requested options answered, client order kept, first duplicate wins', (t) => {
  const n = negotiate([['multicast', ''], ['windowsize', '8'], ['foo', 'bar'], ['blksize', '1024'], ['blksize', '600'], ['tsize', '0']], 42, limits);
  t.deepEqual(n.oack, [['windowsize', '8'], ['blksize', '1024'], ['tsize', '42']]);
  t.is(n.blksize, 1024);
});

// --- lock-step transfer ----------------------------------------------------

test('without OACK the first block goes out at start; each ACK sends the next', (t) => {
  const { s, r } = session(1200);
  s.start();
  t.deepEqual(r.take(), [['blocks', 1, 1], ['arm', 1000]]);
  s.onAck(1);
  t.deepEqual(r.take(), [['blocks', 2, 1], ['arm', 1000]]);
  s.onAck(2);
  t.deepEqual(r.take(), [['blocks', 3, 1], ['arm', 1000]]);
  t.deepEqual(s.blockRange(3), [1024, 1200]);
  s.onAck(3);
  t.deepEqual(r.take(), [['finish']]);
  t.is(s.state, 'done');
});

test('a file that is a multiple of blksize ends with an empty block', (t) => {
  const { s, r } = session(1024);
  t.is(s.lastBlock, 3);
  t.deepEqual(s.blockRange(3), [1024, 1024]);
  s.start();
  s.onAck(1);
  s.onAck(2);
  r.take();
  s.onAck(3);
  t.deepEqual(r.take(), [['finish']]);
});

test('empty file: one empty block', (t) => {
  const { s, r } = session(0);
  s.start();
  t.deepEqual(r.take(), [['blocks', 1, 1], ['arm', 1000]]);
  s.onAck(1);
  t.deepEqual(r.take(), [['finish']]);
});

test('duplicate ACK in lock-step is ignored (no Sorcerer\'s Apprentice)', (t) => {
  const { s, r } = session(5000);
  s.start();
  s.onAck(1);
  r.take();
  s.onAck(1);
  s.onAck(1);
  t.deepEqual(r.take(), []);
  t.is(s.acked, 1);
});

test('old and future ACKs change nothing', (t) => {
  const { s, r } = session(5000);
  s.start();
  s.onAck(1);
  s.onAck(2);
  r.take();
  s.onAck(1);
  s.onAck(9);
  s.onAck(40000);
  t.deepEqual(r.take(), []);
  t.is(s.acked, 2);
});

test('timeout retransmits the unacknowledged block, gives up after the retry limit with an error', (t) => {
  const { s, r } = session(5000, { retries: 2 });
  s.start();
  s.onAck(1);
  r.take();
  s.onTimeout();
  t.deepEqual(r.take(), [['blocks', 2, 1], ['arm', 2000]]);
  s.onTimeout();
  t.deepEqual(r.take(), [['blocks', 2, 1], ['arm', 4000]]);
  s.onTimeout();
  const calls = r.take();
  t.is(calls.length, 1);
  t.is(calls[0]![0], 'fail');
  t.is(calls[0]![2], 0);
  t.is(s.state, 'failed');
  s.onAck(2);
  t.deepEqual(r.take(), [], 'nothing after failure');
});

test('progress resets the retry count', (t) => {
  const { s, r } = session(50000, { retries: 1 });
  s.start();
  for (let b = 1; b <= 5; b++) {
    s.onTimeout();
    s.onAck(b);
  }
  t.false(r.calls.some((c) => c[0] === 'fail'));
  t.is(s.acked, 5);
});

test('peer ERROR ends the session without a reply', (t) => {
  const { s, r } = session(5000);
  s.start();
  r.take();
  s.onError(0, 'cancelled');
  t.deepEqual(r.take(), [['fail', 'peer sent error 0: cancelled', undefined]]);
});

// --- OACK ------------------------------------------------------------------

test('OACK first; data starts on ACK 0; OACK retransmitted on timeout', (t) => {
  const oack: TftpOption[] = [['blksize', '1024'], ['tsize', '3000']];
  const { s, r } = session(3000, { blksize: 1024, oack });
  s.start();
  t.deepEqual(r.take(), [['oack', oack], ['arm', 1000]]);
  s.onAck(1);
  t.deepEqual(r.take(), [], 'ACK other than 0 before data is stale');
  s.onTimeout();
  t.deepEqual(r.take(), [['oack', oack], ['arm', 1000]], 'no backoff before the peer first answers');
  s.onAck(0);
  t.deepEqual(r.take(), [['blocks', 1, 1], ['arm', 1000]]);
  s.onAck(0);
  t.deepEqual(r.take(), [], 'duplicate ACK 0 ignored');
});

test('client refusing the OACK with ERROR 8 ends the session', (t) => {
  const { s, r } = session(3000, { oack: [['blksize', '1024']] });
  s.start();
  r.take();
  s.onError(8, 'option refused');
  t.is(s.state, 'failed');
  t.deepEqual(r.take(), [['fail', 'peer sent error 8: option refused', undefined]]);
});

// --- windows ---------------------------------------------------------------

test('window: a full window per ACK of its last block', (t) => {
  const { s, r } = session(512 * 10 + 1, { windowsize: 4 });
  t.is(s.lastBlock, 11);
  s.start();
  t.deepEqual(r.take(), [['blocks', 1, 4], ['arm', 1000]]);
  s.onAck(4);
  t.deepEqual(r.take(), [['blocks', 5, 4], ['arm', 1000]]);
  s.onAck(8);
  t.deepEqual(r.take(), [['blocks', 9, 3], ['arm', 1000]], 'last window is short');
  s.onAck(11);
  t.deepEqual(r.take(), [['finish']]);
});

test('window: ACK inside the window resends from the block after it', (t) => {
  const { s, r } = session(512 * 20, { windowsize: 8 });
  s.start();
  r.take();
  s.onAck(3); // the peer lost block 4
  t.deepEqual(r.take(), [['blocks', 4, 8], ['arm', 1000]]);
  t.is(s.acked, 3);
  t.is(s.sent, 11);
});

test('window: duplicate ACK resends the window once, then leaves it to the timer', (t) => {
  const { s, r } = session(512 * 20, { windowsize: 4 });
  s.start();
  s.onAck(4);
  r.take();
  s.onAck(4); // the first block of 5..8 was lost
  t.deepEqual(r.take(), [['blocks', 5, 4], ['arm', 1000]]);
  s.onAck(4);
  s.onAck(4);
  t.deepEqual(r.take(), []);
  s.onTimeout();
  t.deepEqual(r.take(), [['blocks', 5, 4], ['arm', 2000]]);
});

test('window: timeout resends the whole window from the last ACK', (t) => {
  const { s, r } = session(512 * 20, { windowsize: 4 });
  s.start();
  s.onAck(2);
  r.take();
  s.onTimeout();
  t.deepEqual(r.take(), [['blocks', 3, 4], ['arm', 2000]]);
});

// --- rollover --------------------------------------------------------------

test('block numbers roll over past 65535 to 0 (lock-step)', (t) => {
  const blocks = 65536 * 2 + 10;
  const { s, r } = session(512 * (blocks - 1) + 1, { blksize: 512 });
  t.is(s.lastBlock, blocks);
  s.start();
  for (let b = 1; b < blocks; b++) s.onAck(b & 0xffff);
  const calls = r.take();
  const last = calls[calls.length - 2]!;
  t.deepEqual(last, ['blocks', blocks, 1]);
  t.is(s.acked, blocks - 1);
  s.onAck(blocks & 0xffff);
  t.deepEqual(r.take(), [['finish']]);
  // The wire numbers sent around the wrap: absolute 65535, 65536 (wire 0), 65537 (wire 1).
  const sent = calls.filter((c): c is ['blocks', number, number] => c[0] === 'blocks').map((c) => c[1]);
  t.true(sent.includes(65536));
  t.true(sent.includes(131072));
});

test('rollover with a window: ACK 0 after the wrap is block 65536, not the OACK', (t) => {
  const { s, r } = session(512 * 70000, { windowsize: 16, oack: [['windowsize', '16']] });
  s.start();
  s.onAck(0);
  let acked = 0;
  while (acked + 16 <= 65520) {
    acked += 16;
    s.onAck(acked & 0xffff);
  }
  t.is(s.acked, 65520);
  r.take();
  s.onAck(65536 & 0xffff); // wire 0 inside the window 65521..65536
  t.is(s.acked, 65536);
  t.deepEqual(r.take(), [['blocks', 65537, 16], ['arm', 1000]]);
  s.onAck(65530 & 0xffff); // stale, behind the window
  t.is(s.acked, 65536);
});

test('abort fails once and sends the given error', (t) => {
  const { s, r } = session(100);
  s.start();
  r.take();
  s.abort('disk gone', { code: 0, message: 'cannot read file' });
  s.abort('again');
  t.deepEqual(r.take(), [['fail', 'disk gone', 0]]);
});

test('retransmissions back off exponentially up to the ceiling; progress resets the wait', (t) => {
  const { s, r } = session(512 * 40, { retries: 10 });
  s.start();
  s.onAck(1);
  r.take();
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    s.onTimeout();
    const arm = r.take().find((c) => c[0] === 'arm');
    waits.push(arm![1] as number);
  }
  t.deepEqual(waits, [2000, 4000, 8000, MAX_BACKOFF_MS, MAX_BACKOFF_MS, MAX_BACKOFF_MS]);
  s.onAck(2);
  t.deepEqual(r.take(), [['blocks', 3, 1], ['arm', 1000]]);
});

for (const [first, what] of [[[], 'DATA 1'], [[['blksize', '1024']], 'the OACK']] as [TftpOption[], string][]) {
  test(`a first packet (${what}) never answered: plain timeout, firstRetries, then the error`, (t) => {
    const { s, r } = session(5000, { retries: 10, firstRetries: 2, oack: first });
    s.start();
    r.take();
    for (let i = 0; i < 2; i++) {
      s.onTimeout();
      t.deepEqual(r.take().find((c) => c[0] === 'arm'), ['arm', 1000]);
    }
    s.onTimeout();
    t.deepEqual(r.take(), [['fail', 'no answer after 2 retransmissions', 0]]);
  });
}

test('firstRetries never exceeds retries; once the peer answered, retries applies', (t) => {
  t.is(session(10, { retries: 1, firstRetries: 5 }).s.firstRetries, 1);
  const { s, r } = session(5000, { retries: 3, firstRetries: 0 });
  s.start();
  s.onAck(1);
  for (let i = 0; i < 3; i++) s.onTimeout();
  t.false(r.calls.some((c) => c[0] === 'fail'));
  s.onTimeout();
  t.is(s.state, 'failed');
});
