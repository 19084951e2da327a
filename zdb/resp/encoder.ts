// RESP2 reply encoding. Small replies are built as latin1 strings (one
// allocation when the batch is flushed); payloads stay Buffers so a 4 KiB
// value is never copied into a string.

export type Reply = string | Buffer;

export const OK = '+OK\r\n';
export const NIL = '$-1\r\n';
export const EMPTY_ARRAY = '*0\r\n';

export function simple(text: string): string {
  return `+${text}\r\n`;
}

/** An error reply; `text` is sent after the `-`, exactly as the reference words it. */
export function error(text: string): string {
  return `-${text}\r\n`;
}

export function integer(n: number | bigint): string {
  return `:${n}\r\n`;
}

export function arrayHeader(n: number): string {
  return `*${n}\r\n`;
}

/** Bulk string header for a payload of `len` bytes (payload and CRLF follow). */
export function bulkHeader(len: number): string {
  return `$${len}\r\n`;
}

/** A bulk string as one Buffer (for small binary values: keys, cursors). */
export function bulk(value: Buffer | string | null | undefined): Buffer | string {
  if (value === null || value === undefined) return NIL;
  if (typeof value === 'string') return `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
  const head = `$${value.length}\r\n`;
  const out = Buffer.allocUnsafe(head.length + value.length + 2);
  out.write(head, 0, 'latin1');
  value.copy(out, head.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** Encodes a request (array of bulk strings), as a client sends it. */
export function encodeCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
