// A small structured logger passed to every server part (no global logger).
// Messages and field values often carry what a client sent (file names,
// modes, error texts, host names), so every string is escaped here, once,
// for every protocol: one call is always exactly one line, and no value can
// pose as another field or, in JSON, as another key.
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * What a terminal or a line-based reader could take for a line break or a
 * control sequence: C0 and C1 controls (NEL among them), DEL, the Unicode
 * line and paragraph separators, and the bidi overrides that reorder what
 * a reader sees.
 */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function hexEscape(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Text output: the backslash is escaped too, so `\n` in a log line always means an escaped newline. */
export function escapeLogText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(UNSAFE, (c) => SHORT[c] ?? hexEscape(c));
}

/** JSON that cannot throw (a BigInt, a cycle) nor vanish (a function): a logger must not fail. */
function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x instanceof Error ? x.message : x)) as string | undefined;
    if (s !== undefined) return s;
  } catch {}
  return JSON.stringify(String(v));
}

/** A field value for the text form: quoted when it could otherwise read as more than one field. */
function textValue(v: unknown): string {
  const raw = typeof v === 'string' ? v : v instanceof Error ? v.message : typeof v === 'object' && v !== null ? safeJson(v) : String(v);
  const s = escapeLogText(raw);
  return s === '' || /\s/.test(s) || s.startsWith('"') ? `"${s.replace(/"/g, '\\"')}"` : s;
}

/** Keys come from code, but a key with a space or "=" would still split a field. */
function textKey(k: string): string {
  return escapeLogText(k).replace(/[\s="]/g, '_') || '_';
}

const RESERVED = new Set(['time', 'level', 'msg']);

function jsonLine(level: Level, msg: string, fields: Record<string, unknown> | undefined): string {
  let body = '';
  // A field must not replace the record's own keys.
  if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) body += `,${JSON.stringify(RESERVED.has(k) ? `field_${k}` : k)}:${safeJson(v)}`;
  const line = `{"time":"${new Date().toISOString()}","level":"${level}","msg":${JSON.stringify(msg)}${body}}`;
  // JSON.stringify escapes C0 controls, quotes and backslashes; the rest of
  // UNSAFE can only occur inside strings, where \uXXXX is valid JSON.
  return line.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function textLine(level: Level, msg: string, fields: Record<string, unknown> | undefined): string {
  const extra = fields
    ? Object.entries(fields)
        .map(([k, v]) => `${textKey(k)}=${textValue(v)}`)
        .join(' ')
    : '';
  return `${level.padEnd(5)} ${escapeLogText(msg)}${extra ? ' ' + extra : ''}`;
}

export function createLogger(opts: { level?: Level; json?: boolean; write?: (line: string) => void } = {}): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(opts.json ? jsonLine(level, msg, fields) : textLine(level, msg, fields));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
