// /proc/<pid>/stat (or one thread's, /proc/<pid>/task/<tid>/stat) for the
// benches and tests that measure a process's CPU time or a thread's
// priority, as fields after the command name (statFields, lib/process.ts).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { statFields } from '../lib/process.ts';

export { statFields };

/** USER_HZ: the unit of the time fields (100 on Linux, whatever the kernel's HZ). */
export const CLK_TCK = 100;

function path(pid: number, tid?: number): string {
  return tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
}

export async function readStat(pid: number, tid?: number): Promise<string[]> {
  return statFields(await readFile(path(pid, tid), 'utf8'));
}

export function readStatSync(pid: number, tid?: number): string[] {
  return statFields(readFileSync(path(pid, tid), 'utf8'));
}

/** utime + stime, in ticks of CLK_TCK. */
export function cpuTicks(fields: string[]): number {
  return Number(fields[11]) + Number(fields[12]);
}

/** utime + stime, in seconds. */
export function cpuSeconds(fields: string[]): number {
  return cpuTicks(fields) / CLK_TCK;
}
