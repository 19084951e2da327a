// What holds a block device or its partitions right now: mounts (by device
// number, or by source path for btrfs, whose mounts show an anonymous
// device number), swap, and holders such as device-mapper or md.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Mount {
  source: string;
  devNumber: string;
  mountPoint: string;
  fsType: string;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// mountinfo escapes blanks, tabs, newlines and backslashes as \ooo.
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Pure parser for /proc/self/mountinfo. */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (f.length < 10 || dash < 6) continue;
    mounts.push({ devNumber: f[2], mountPoint: unescape(f[4]), fsType: f[dash + 1], source: unescape(f[dash + 2]) });
  }
  return mounts;
}

/** Each user of /dev/<name> or its partitions, as `mounted at X`, `swap`, `held by dm-0`. */
export function deviceUsers(root: string, name: string, partitions: string[]): string[] {
  const names = [name, ...partitions];
  const devNumbers = new Set(names.map((n) => read(join(root, 'sys/class/block', n, 'dev')).trim()).filter((d) => d !== ''));
  const paths = new Set(names.map((n) => `/dev/${n}`));
  const users: string[] = [];
  for (const m of parseMountinfo(read(join(root, 'proc/self/mountinfo')))) {
    if (devNumbers.has(m.devNumber) || paths.has(m.source)) users.push(`mounted at ${m.mountPoint}`);
  }
  for (const line of read(join(root, 'proc/swaps')).split('\n').slice(1)) {
    if (paths.has(line.split(/\s+/)[0])) users.push('swap');
  }
  for (const n of names) for (const h of entries(join(root, 'sys/class/block', n, 'holders'))) users.push(`held by ${h}`);
  return users;
}
