// The logger escapes what clients send: one call is one line, and no value
// can pose as another field (text) or another key (JSON).
import test from 'ava';
import { createLogger, escapeLogText } from '../../boot/log.ts';

function capture(json: boolean) {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', json, write: (l) => lines.push(l) }) };
}

// Everything a reader or terminal may take for a line break, plus ESC, DEL and a bidi override.
const BREAKERS = 'a\nb\rc\u0085d\u2028e\u2029f\x1b[31mg\x7fh\u202ei';

test('text: control characters, Unicode line breaks and bidi overrides are escaped in the message and in values', (t) => {
  const { lines, log } = capture(false);
  log.warn(`msg ${BREAKERS}`, { v: BREAKERS });
  t.is(lines.length, 1);
  t.notRegex(lines[0]!, /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202e]/);
  t.is(lines[0], 'warn  msg a\\nb\\rc\\x85d\\u2028e\\u2029f\\x1b[31mg\\x7fh\\u202ei v=a\\nb\\rc\\x85d\\u2028e\\u2029f\\x1b[31mg\\x7fh\\u202ei');
});

test('text: a value with spaces or a leading quote is quoted, so it cannot forge a field', (t) => {
  const { lines, log } = capture(false);
  log.info('tftp request refused', { file: 'a reason=ok level=info', q: '"x', empty: '', plain: 'boot.efi', n: 3, obj: { s: 'x" y=z' } });
  t.is(lines[0], 'info  tftp request refused file="a reason=ok level=info" q="\\"x" empty="" plain=boot.efi n=3 obj="{\\"s\\":\\"x\\\\\\" y=z\\"}"');
});

test('text: backslashes are escaped, so an escaped newline and a literal backslash-n differ', (t) => {
  t.is(escapeLogText('a\\nb'), 'a\\\\nb');
  t.is(escapeLogText('a\nb'), 'a\\nb');
});

test('JSON: one object per line, exact values back, Unicode line breaks escaped, fields cannot replace msg or level', (t) => {
  const { lines, log } = capture(true);
  log.error(`m${BREAKERS}`, { v: BREAKERS, msg: 'forged', level: 'debug', err: new Error('boom'), big: 5n });
  t.is(lines.length, 1);
  t.notRegex(lines[0]!, /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202e]/);
  const r = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.like(r, { level: 'error', msg: `m${BREAKERS}`, v: BREAKERS, field_msg: 'forged', field_level: 'debug', err: 'boom', big: '5' });
});

test('values a logger must not throw on', (t) => {
  for (const json of [false, true]) {
    const { lines, log } = capture(json);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    log.info('odd', { cyclic, fn: () => 1, u: undefined, nul: null });
    t.is(lines.length, 1);
    if (json) t.notThrows(() => JSON.parse(lines[0]!));
  }
});
