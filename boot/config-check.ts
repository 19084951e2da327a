// What `zeroboot serve --check` adds to parsing: the configuration against
// this host (its interfaces and their subnets) and against the files it
// names (kernels, initrds, the iPXE folder). Each problem is one line that
// names the key; all are collected, so one run lists everything to fix.
import { stat } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { MountedStore } from './store.ts';
import type { ServerConfig } from './config.ts';
import { ipToInt, intToIp } from '../lib/ipv4.ts';
import { prefixLength, subnetOf } from './config-ranges.ts';
import { didYouMean } from '../lib/suggest.ts';
import { parsePgUrl } from './state/pg-url.ts';

/** The host's interfaces, as node:os networkInterfaces() lists them. */
export type HostInterfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

interface Subnet {
  name: string;
  address: string;
  cidr: string;
  contains(ip: string): boolean;
}

function subnets(nics: HostInterfaces): Subnet[] {
  const out: Subnet[] = [];
  for (const [name, addrs] of Object.entries(nics)) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4') continue;
      const { net } = subnetOf(a.address, a.netmask);
      out.push({
        name,
        address: a.address,
        cidr: `${intToIp(net)}/${prefixLength(a.netmask) ?? a.netmask}`,
        contains: (ip) => subnetOf(ip, a.netmask).net === net,
      });
    }
  }
  return out;
}

/** Interfaces that are missing, a server address no interface holds, a pool outside the subnet it is served on. */
export function hostProblems(c: ServerConfig, nics: HostInterfaces): string[] {
  const problems: string[] = [];
  const names = Object.keys(nics);
  for (const [i, name] of c.interfaces.entries()) {
    if (!nics[name]) problems.push(`server.interfaces[${i}]: no interface "${name}" on this host${didYouMean(name, names)}`);
  }
  const all = subnets(nics);
  const own = all.find((s) => s.address === c.address);
  if (!own && (c.dhcp.mode !== 'off' || c.tftp.enabled)) {
    problems.push(`server.address: ${c.address} is not an address of this host (${all.map((s) => `${s.name} ${s.address}`).join(', ') || 'no IPv4 interfaces'})`);
  }
  const pool = c.dhcp.mode === 'full' ? c.dhcp.pool : undefined;
  if (pool) {
    // The subnet DHCP answers on: the listed interfaces', else the one holding the server's address.
    const served = c.interfaces.length > 0 ? all.filter((s) => c.interfaces.includes(s.name)) : own ? [own] : [];
    for (const s of served) {
      for (const [key, ip] of [['start', pool.start], ['end', pool.end]] as const) {
        if (!s.contains(ip)) problems.push(`server.dhcp.pool.${key}: ${ip} is outside ${s.name}'s subnet ${s.cidr}, where the pool is served`);
      }
    }
  }
  return problems;
}

/** Kernels and initrds each profile names that the store mounts do not hold, and a missing iPXE folder. */
export async function fileProblems(c: ServerConfig): Promise<string[]> {
  const problems: string[] = [];
  const ipxe = await stat(c.ipxeDir).catch(() => undefined);
  if (!ipxe?.isDirectory()) problems.push(`server.ipxeDir: ${c.ipxeDir} is not a folder (Debian: apt install ipxe)`);
  const store = new MountedStore(c.mounts);
  const mounts = c.mounts.map((m) => `${m.prefix || '/'} -> ${m.dir}`).join(', ') || 'none';
  for (const [i, p] of c.profiles.entries()) {
    const users = c.groups.filter((g) => g.profile === p.name).map((g) => g.name);
    const usedBy = users.length > 0 ? `; used by group ${users.join(', ')}` : '';
    for (const [key, file] of [['kernel', p.kernel], ...p.initrd.map((f, j) => [`initrd[${j}]`, f] as const)] as const) {
      const found = await store.open(file).then(
        async (e) => (await e.close(), true),
        () => false,
      );
      if (!found) problems.push(`profiles[${i}].${key}: ${file} is not in the store (mounts: ${mounts})${usedBy}`);
    }
  }
  return problems;
}

/** The configuration in one line, for `serve --check` and the start. */
/** host:port/database of the `pg` URL: no user, no password. */
function pgWhere(url: string): string {
  const t = parsePgUrl(url);
  return `${t.host}:${t.port}/${t.database}`;
}

export function summary(c: ServerConfig): string {
  const pool = c.dhcp.pool;
  const dhcp = c.dhcp.mode === 'full' && pool ? `full ${pool.start}-${pool.end} (${ipToInt(pool.end) - ipToInt(pool.start) + 1} addresses)` : c.dhcp.mode;
  const reservations = c.machines.filter((m) => m.ip).length;
  return [
    `address ${c.address}${c.interfaces.length > 0 ? ` on ${c.interfaces.join(',')}` : ''}`,
    `dhcp ${dhcp}`,
    `http :${c.http.port}`,
    c.tftp.enabled ? `tftp :${c.tftp.port}` : 'tftp off',
    c.management.enabled ? `api ${c.management.host}:${c.management.port}` : 'api off',
    `${c.profiles.length} profile(s), ${c.groups.length} group(s), ${c.machines.length} machine(s) (${reservations} reservation(s))`,
    ...(c.pg ? [`state shared in PostgreSQL at ${pgWhere(c.pg)}`] : []),
  ].join(', ');
}
