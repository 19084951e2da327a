// The calling thread's scheduling priority (its nice value). Linux schedules
// threads, and setpriority() on a thread id changes that thread only: a
// server can have its latency-bound thread (DHCP) run before its bulk work
// (file transfers) when both want the CPU, without touching the rest.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The kernel's id of the calling thread (Linux: /proc/thread-self is "<pid>/task/<tid>"). */
export function threadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lowers the calling thread's nice value to `nice` (a higher priority);
 * a thread already at or below it is left alone. Going below the current
 * value needs CAP_SYS_NICE or an RLIMIT_NICE that allows it. Returns the
 * value in force afterwards and, when it could not be set, why.
 */
export function raiseThreadPriority(nice: number): { nice: number | undefined; error?: string } {
  const tid = threadId();
  if (tid === undefined) return { nice: undefined, error: 'no /proc/thread-self' };
  try {
    if (getPriority(tid) > nice) setPriority(tid, nice);
    return { nice: getPriority(tid) };
  } catch (e) {
    return { nice: getPriority(tid), error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}
