// The nice value of each thread of a process, for the tests that check which
// thread the server raised (the DHCP thread) and that the rest stayed put.
import { readdir } from 'node:fs/promises';
import { readStat } from '../../harness/proc-stat.ts';

/** Field 19 of /proc/<pid>/task/<tid>/stat, per live thread. */
export async function threadNices(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const fields = await readStat(pid, Number(tid)).catch(() => undefined);
    if (fields) out.push(Number(fields[16]));
  }
  return out;
}
