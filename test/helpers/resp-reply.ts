// A RESP2 reply reader for tests that compare servers byte for byte: it
// parses one complete reply from a buffer and says how many bytes it used.
export type RespValue =
  | { type: 'simple'; text: string }
  | { type: 'error'; text: string }
  | { type: 'integer'; value: bigint }
  | { type: 'bulk'; value: Buffer | null }
  | { type: 'array'; items: RespValue[] | null };

function line(buf: Buffer, at: number): { text: string; next: number } | undefined {
  const end = buf.indexOf('\r\n', at, 'latin1');
  if (end < 0) return undefined;
  return { text: buf.toString('latin1', at, end), next: end + 2 };
}

/** Parses the reply starting at `at`; undefined while it is incomplete. */
export function readReply(buf: Buffer, at = 0): { value: RespValue; next: number } | undefined {
  if (at >= buf.length) return undefined;
  const kind = String.fromCharCode(buf[at]);
  const l = line(buf, at + 1);
  if (!l) return undefined;
  switch (kind) {
    case '+':
      return { value: { type: 'simple', text: l.text }, next: l.next };
    case '-':
      return { value: { type: 'error', text: l.text }, next: l.next };
    case ':':
      return { value: { type: 'integer', value: BigInt(l.text) }, next: l.next };
    case '$': {
      const n = Number(l.text);
      if (n < 0) return { value: { type: 'bulk', value: null }, next: l.next };
      if (buf.length < l.next + n + 2) return undefined;
      return { value: { type: 'bulk', value: buf.subarray(l.next, l.next + n) }, next: l.next + n + 2 };
    }
    case '*': {
      const n = Number(l.text);
      if (n < 0) return { value: { type: 'array', items: null }, next: l.next };
      const items: RespValue[] = [];
      let next = l.next;
      for (let i = 0; i < n; i++) {
        const r = readReply(buf, next);
        if (!r) return undefined;
        items.push(r.value);
        next = r.next;
      }
      return { value: { type: 'array', items }, next };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString('latin1', at, at + 40))}`);
  }
}
