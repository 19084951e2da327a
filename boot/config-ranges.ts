// Checks across keys of the configuration: the pool's range and subnet, the
// MAC reservations against each other, the pool and the addresses that are
// not a client's to hold, and listeners sharing a port. Each refusal names
// the keys involved, so the farmer knows which two lines disagree.
import { ipToInt, intToIp } from '../lib/ipv4.ts';
import { ConfigError } from './config-error.ts';
import type { DhcpPoolSettings } from './dhcp/settings.ts';
import type { MachineOverride } from './selection.ts';

/** What the checks read of a parsed configuration (config.ts's ServerConfig has it; declared here so the two do not import each other). */
export interface RangedConfig {
  address: string;
  dhcp: { mode: string; port: number; proxyPort: number; pool?: DhcpPoolSettings };
  tftp: { enabled: boolean; port: number };
  http: { host: string; port: number };
  management: { enabled: boolean; host: string; port: number };
  machines: MachineOverride[];
}

/** The prefix length of a contiguous mask, or undefined when ones follow a zero. */
export function prefixLength(mask: string): number | undefined {
  const m = ipToInt(mask);
  let len = 0;
  while (len < 32 && (m & (0x80000000 >>> len)) !== 0) len++;
  const contiguous = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return contiguous === m ? len : undefined;
}

export function subnetOf(ip: string, mask: string): { net: number; broadcast: number } {
  const m = ipToInt(mask);
  const net = (ipToInt(ip) & m) >>> 0;
  return { net, broadcast: (net | ~m) >>> 0 };
}

/** Two listeners of one protocol on one port: the second would fail to bind, later and with less to say. */
function checkPorts(c: RangedConfig): void {
  const udp: [string, number][] = [];
  if (c.dhcp.mode !== 'off') udp.push(['server.dhcp.port', c.dhcp.port], ['server.dhcp.proxyPort', c.dhcp.proxyPort]);
  if (c.tftp.enabled) udp.push(['server.tftp.port', c.tftp.port]);
  for (const [i, [key, port]] of udp.entries()) {
    const other = udp.slice(0, i).find(([, p]) => p === port);
    if (other) throw new ConfigError(`${key}: UDP port ${port} is also ${other[0]}`);
  }
  const any = (host: string) => host === '0.0.0.0' || host === '::';
  const m = c.management;
  const sameHost = m.host === c.http.host || any(m.host) || any(c.http.host);
  // Port 0 is any free port: never a clash.
  if (m.enabled && m.port !== 0 && m.port === c.http.port && sameHost) {
    throw new ConfigError(`server.management.port: TCP port ${m.port} on ${m.host} is also server.http.port on ${c.http.host}`);
  }
}

/** Throws the first disagreement between the pool, the reservations and the ports. */
export function checkRanges(c: RangedConfig): void {
  checkPorts(c);
  const pool = c.dhcp.pool;
  let net: { net: number; broadcast: number } | undefined;
  let cidr = '';
  if (pool) {
    const len = prefixLength(pool.subnetMask);
    if (len === undefined) throw new ConfigError(`server.dhcp.pool.subnetMask: ${pool.subnetMask} is not a subnet mask (its ones must come first, as in 255.255.255.0)`);
    net = subnetOf(pool.start, pool.subnetMask);
    cidr = `${intToIp(net.net)}/${len}`;
    const inNet = (ip: string) => subnetOf(ip, pool.subnetMask).net === net!.net;
    if (!inNet(pool.end)) throw new ConfigError(`server.dhcp.pool: start ${pool.start} and end ${pool.end} are not in one subnet (${cidr} by subnetMask ${pool.subnetMask})`);
    const s = ipToInt(pool.start);
    const e = ipToInt(pool.end);
    if (s === net.net || e === net.broadcast) throw new ConfigError(`server.dhcp.pool: ${pool.start}-${pool.end} includes the network or broadcast address of ${cidr}`);
    if (pool.router && !inNet(pool.router)) throw new ConfigError(`server.dhcp.pool.router: ${pool.router} is outside the pool's subnet ${cidr}`);
  }
  const byIp = new Map<string, number>();
  const byMac = new Map<string, number>();
  for (const [i, m] of c.machines.entries()) {
    const seen = byMac.get(m.mac);
    if (seen !== undefined) throw new ConfigError(`machines[${i}].mac: ${m.mac} is already listed as machines[${seen}]`);
    byMac.set(m.mac, i);
    if (!m.ip) continue;
    const other = byIp.get(m.ip);
    if (other !== undefined) throw new ConfigError(`machines[${i}].ip: ${m.ip} is already reserved for machines[${other}] (${c.machines[other].mac})`);
    byIp.set(m.ip, i);
    if (m.ip === c.address) throw new ConfigError(`machines[${i}].ip: ${m.ip} is the server's own address (server.address)`);
    if (!pool || !net) continue;
    if (m.ip === pool.router) throw new ConfigError(`machines[${i}].ip: ${m.ip} is the router's address (server.dhcp.pool.router)`);
    const n = ipToInt(m.ip);
    if (subnetOf(m.ip, pool.subnetMask).net !== net.net) throw new ConfigError(`machines[${i}].ip: ${m.ip} is outside the pool's subnet ${cidr}`);
    if (n === net.net || n === net.broadcast) throw new ConfigError(`machines[${i}].ip: ${m.ip} is the network or broadcast address of ${cidr}`);
  }
}
