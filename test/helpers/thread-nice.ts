// The nice value of each thread of a process, for the tests that check which
// thread the server raised (the DHCP thread) and that the rest stayed put.
import { readdir, readFile } from 'node:fs/promises';

/** Field 19 of /proc/<pid>/task/<tid>/stat, per live thread. */
export async function threadNices(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (stat) out.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return out;
}
