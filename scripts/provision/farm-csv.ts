// The farmer's list of servers: `mac,hostname[,ip][,profile]` per line
// (a header line, blank lines and # comments allowed). Every error names
// the file and line, so a farmer can fix the row.
import { isIPv4 } from 'node:net';
import { normalizeMac } from '../../lib/mac.ts';
import { ProvisionError } from './exit-codes.ts';

export interface FarmNode {
  mac: string;
  hostname: string;
  ip?: string;
  profile?: string;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const PROFILE = /^[A-Za-z0-9_.-]{1,64}$/;

function bad(where: string, msg: string): never {
  throw new ProvisionError('badCsv', `${where}: ${msg}`);
}

export function parseFarmCsv(text: string, file = 'nodes.csv'): FarmNode[] {
  const nodes: FarmNode[] = [];
  const seen = { mac: new Map<string, number>(), hostname: new Map<string, number>(), ip: new Map<string, number>() };
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const where = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const cols = line.split(',').map((c) => c.trim());
    if (nodes.length === 0 && cols[0].toLowerCase() === 'mac') continue;
    if (cols.length < 2 || cols.length > 4) bad(where, `expected mac,hostname[,ip][,profile], got ${cols.length} column(s)`);
    const mac = normalizeMac(cols[0]) ?? bad(where, `"${cols[0]}" is not a MAC address`);
    const hostname = cols[1];
    if (!HOSTNAME.test(hostname)) bad(where, `"${hostname}" is not a host name (letters, digits and -, dot-separated labels of at most 63)`);
    // The third column is an address when it looks like one; mac,host,profile is allowed too.
    const [ip, profile] = cols.length === 4 ? [cols[2], cols[3]] : cols.length === 3 && !isIPv4(cols[2]) && !/^[0-9.]+$/.test(cols[2]) ? ['', cols[2]] : [cols[2] ?? '', ''];
    if (ip && !isIPv4(ip)) bad(where, `"${ip}" is not an IPv4 address`);
    if (profile && !PROFILE.test(profile)) bad(where, `"${profile}" is not a profile name`);
    for (const [key, value] of [['mac', mac], ['hostname', hostname.toLowerCase()], ['ip', ip]] as const) {
      if (!value) continue;
      const first = seen[key].get(value);
      if (first !== undefined) bad(where, `${key} ${value} is already on line ${first}`);
      seen[key].set(value, i + 1);
    }
    nodes.push({ mac, hostname, ...(ip ? { ip } : {}), ...(profile ? { profile } : {}) });
  }
  return nodes;
}
