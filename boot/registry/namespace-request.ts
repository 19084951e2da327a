// What the management API may ask a node for: a zdb namespace, checked field
// by field against what the node's zdb accepts (NSSET refuses values over 63
// bytes; a password of "*" would clear the password), so a bad request fails
// here with one line instead of half-way on the node.

export type NamespaceMode = 'user' | 'seq';

export interface NamespaceRequest {
  /** Absent: the board names it after the task. */
  name?: string;
  mode: NamespaceMode;
  password?: string;
  public: boolean;
  /** Bytes of data the namespace may hold. */
  maxsize: number;
  /** A disk name from the node's report (sdb, nvme0n1); absent: the node picks the one with most room. */
  disk?: string;
}

export class TaskInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskInputError';
  }
}

const FIELDS = ['name', 'mode', 'password', 'public', 'maxsize', 'disk'];
/** zdb allows 128 bytes; 64 keeps names readable and leaves room in paths. `default` is zdb's own. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const PASSWORD_PATTERN = /^[\x21-\x7e]{1,63}$/;
const DISK_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function parseNamespaceRequest(body: unknown): NamespaceRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TaskInputError('the body must be a JSON object such as {"mode":"user","maxsize":1073741824,"password":"..."}');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).find((k) => !FIELDS.includes(k));
  if (unknown !== undefined) throw new TaskInputError(`unknown field ${JSON.stringify(unknown.slice(0, 40))}; a namespace request has ${FIELDS.join(', ')}`);
  const out: NamespaceRequest = { mode: 'user', public: false, maxsize: 0 };
  if (b.name !== undefined) {
    if (typeof b.name !== 'string' || !NAME_PATTERN.test(b.name) || b.name === 'default') {
      throw new TaskInputError('name must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit, and not "default"');
    }
    out.name = b.name;
  }
  if (b.mode !== undefined) {
    if (b.mode !== 'user' && b.mode !== 'seq') throw new TaskInputError(`mode must be "user" or "seq", got ${JSON.stringify(b.mode).slice(0, 40)}`);
    out.mode = b.mode;
  }
  if (b.password !== undefined) {
    if (typeof b.password !== 'string' || !PASSWORD_PATTERN.test(b.password) || b.password === '*') {
      throw new TaskInputError('password must be 1 to 63 printable ASCII characters without spaces, and not "*" (zdb reads it as "no password")');
    }
    out.password = b.password;
  }
  if (b.public !== undefined) {
    if (typeof b.public !== 'boolean') throw new TaskInputError('public must be true or false');
    out.public = b.public;
  }
  if (!Number.isSafeInteger(b.maxsize) || (b.maxsize as number) < 1) throw new TaskInputError('maxsize is required: the bytes the namespace may hold, an integer from 1 to 2^53-1');
  out.maxsize = b.maxsize as number;
  if (b.disk !== undefined) {
    if (typeof b.disk !== 'string' || !DISK_PATTERN.test(b.disk)) throw new TaskInputError('disk must be a disk name from the node\'s report, such as "sdb"');
    out.disk = b.disk;
  }
  return out;
}
