// Durability checks from outside a process: run it under strace and read
// back, in order, the writes to its files, its flushes (fdatasync/fsync) and
// the bytes it sent to peers. A reply that acknowledges a write is durable
// only if a flush of every file that write touched began after the write
// returned and returned before the reply was sent.
//
// Line order of one strace output file is causal order: strace handles one
// syscall stop at a time and the thread stays stopped until it is handled, so
// a call whose exit is printed before another's entry finished before the
// other began, across threads too (fdatasync runs in libuv's pool).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface Syscall {
  pid: number;
  name: string;
  /** what strace -y says the first argument is: a path for files, `socket:[…]`, `pipe:[…]` … */
  target: string;
  /** the buffers of the call (every hex string literal), one by one and concatenated in order */
  strings: Buffer[];
  data: Buffer;
  /** the return value as printed, e.g. `10`, `-1 ENOSPC (No space left on device)` */
  ret: string;
  /** line index of the entry and of the exit in the trace (equal when not interleaved) */
  entry: number;
  exit: number;
  /** seconds since the epoch at entry (strace -ttt) */
  time: number;
}

export const FLUSHES = ['fdatasync', 'fsync'];
export const WRITES = ['write', 'writev', 'pwrite64', 'pwritev', 'pwritev2'];
export const SENDS = ['write', 'writev', 'sendto', 'sendmsg', 'sendmmsg'];

/** strace flags that print what this parser reads; prefix the traced command with them. */
export function straceArgs(traceFile: string, syscalls: string[]): string[] {
  return ['strace', '-f', '-qq', '-ttt', '-xx', '-y', '-s', '1000000', '-o', traceFile, '-e', `trace=${syscalls.join(',')}`];
}

const HEX = /"((?:\\x[0-9a-f]{2})*)"/g;

function unhex(s: string): Buffer {
  return Buffer.from(s.replace(/\\x/g, ''), 'hex');
}

export function parseStrace(text: string): Syscall[] {
  const calls: Syscall[] = [];
  const open = new Map<number, { call: Syscall; args: string }>();
  const lines = text.split('\n');
  const finish = (call: Syscall, args: string, exit: number) => {
    const fd = /^\d+<((?:\\x[0-9a-f]{2})*)>/.exec(args);
    call.target = fd ? unhex(fd[1]).toString() : '';
    call.strings = [...args.slice(fd ? fd[0].length : 0).matchAll(HEX)].map((m) => unhex(m[1]));
    call.data = Buffer.concat(call.strings);
    call.ret = /\) = (.*)$/.exec(args)?.[1] ?? '?';
    call.exit = exit;
    calls.push(call);
  };
  lines.forEach((line, i) => {
    const m = /^(\d+)\s+([\d.]+)\s+(.*)$/.exec(line);
    if (!m) return;
    const pid = Number(m[1]);
    const rest = m[3];
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      const o = open.get(pid);
      if (!o) return;
      open.delete(pid);
      return finish(o.call, o.args + resumed[1], i);
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    if (!call) return;
    const c: Syscall = { pid, name: call[1], target: '', strings: [], data: Buffer.alloc(0), ret: '?', entry: i, exit: i, time: Number(m[2]) };
    if (call[2].endsWith('<unfinished ...>')) open.set(pid, { call: c, args: call[2].slice(0, -'<unfinished ...>'.length) });
    else finish(c, call[2], i);
  });
  return calls.sort((a, b) => a.entry - b.entry);
}

export function readTrace(traceFile: string): Promise<Syscall[]> {
  return readFile(traceFile, 'utf8').then(parseStrace);
}

export function readTraceSync(traceFile: string): Syscall[] {
  return parseStrace(readFileSync(traceFile, 'utf8'));
}

export const isFile = (c: Syscall): boolean => c.target.startsWith('/');
export const succeeded = (c: Syscall): boolean => /^\d/.test(c.ret);

/** Successful writes to files whose path passes `pathTest` and whose bytes contain every one of `needles`. */
export function fileWritesHolding(calls: Syscall[], needles: Buffer | Buffer[], pathTest: (p: string) => boolean): Syscall[] {
  const all = Array.isArray(needles) ? needles : [needles];
  return calls.filter((c) => WRITES.includes(c.name) && isFile(c) && pathTest(c.target) && succeeded(c) && all.every((n) => c.data.includes(n)));
}

/** The first successful flush of `write`'s file that began after `write` returned and returned before `before` began. */
export function flushBetween(calls: Syscall[], write: Syscall, before: Syscall): Syscall | undefined {
  return calls.find((c) => FLUSHES.includes(c.name) && c.target === write.target && succeeded(c) && c.entry > write.exit && c.exit < before.entry);
}

/**
 * Why `reply` is not a durable acknowledgement of the bytes `needle` in the
 * files matching `pathTest` (undefined when it is): no write of them came
 * before the reply, or none of those writes was flushed before the reply.
 */
export function unflushedBefore(calls: Syscall[], reply: Syscall, needles: Buffer | Buffer[], pathTest: (p: string) => boolean): string | undefined {
  const writes = fileWritesHolding(calls, needles, pathTest).filter((w) => w.exit < reply.entry);
  const what = (Array.isArray(needles) ? needles : [needles]).map((n) => n.toString('latin1'));
  if (writes.length === 0) return `no file write holding ${JSON.stringify(what)} before the reply (line ${reply.entry + 1})`;
  if (writes.some((w) => flushBetween(calls, w, reply))) return undefined;
  return `${writes.map((w) => `${w.name} to ${w.target} (line ${w.exit + 1})`).join(', ')} not flushed before the reply (line ${reply.entry + 1})`;
}

/** Pids of the direct children of `pid` (the command strace runs). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Signals the command strace runs (strace started with -o blocks SIGTERM and
 * SIGINT, and killing it alone leaves the command running untraced); strace
 * exits once the command has.
 */
export function signalTraced(stracePid: number, signal: NodeJS.Signals): void {
  for (const pid of childPids(stracePid)) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
