// The host checks before anything is written: the interface the farm is
// on (present, with an IPv4 address), and the ports the server needs (free,
// or held by zeroboot itself, as on a second run).
import { networkInterfaces } from 'node:os';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { ipToInt, intToIp } from '../../lib/ipv4.ts';
import { runCommand } from '../../lib/process.ts';
import { ProvisionError } from './exit-codes.ts';

export interface FarmInterface {
  name: string;
  address: string;
  netmask: string;
  prefixLength: number;
  mac: string;
  /** False when the link is down (no cable, or a bridge with no port up): the check passes with a warning. */
  carrier: boolean;
}

/** The host's interfaces, with or without an address or a link. */
function interfaceNames(): string[] {
  try {
    return readdirSync('/sys/class/net').sort();
  } catch {
    return Object.keys(networkInterfaces());
  }
}

interface IpAddrJson {
  ifname: string;
  operstate?: string;
  address?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/**
 * The interface and its first IPv4 address, from `ip -j addr` (Node's own
 * list leaves out interfaces without a link, such as a bridge with no port
 * yet, which still serve once a cable is in).
 */
export function checkInterface(name: string): FarmInterface {
  if (!interfaceNames().includes(name)) {
    const known = interfaceNames().filter((n) => n !== 'lo');
    throw new ProvisionError('noInterface', `interface ${name} does not exist (this host has: ${known.join(', ') || 'none but lo'})`);
  }
  const info = (JSON.parse(execFileSync('ip', ['-j', 'addr', 'show', 'dev', name], { encoding: 'utf8' })) as IpAddrJson[])[0];
  const v4 = info?.addr_info?.find((a) => a.family === 'inet');
  if (!v4) throw new ProvisionError('noAddress', `interface ${name} has no IPv4 address; give it the farm network's address first (ip addr add <address>/<prefix> dev ${name})`);
  const netmask = intToIp(v4.prefixlen === 0 ? 0 : (0xffffffff << (32 - v4.prefixlen)) >>> 0);
  return { name, address: v4.local, netmask, prefixLength: v4.prefixlen, mac: info.address ?? '00:00:00:00:00:00', carrier: info.operstate !== 'DOWN' };
}

/** Whether `ip` is in the interface's subnet. */
export function inSubnet(iface: FarmInterface, ip: string): boolean {
  const mask = ipToInt(iface.netmask);
  return ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(iface.address) & mask) >>> 0);
}

/**
 * A full-mode pool for the interface's subnet: the upper half of its host
 * addresses, without the server's own address.
 */
export function defaultPool(iface: FarmInterface): { start: string; end: string } {
  const mask = ipToInt(iface.netmask);
  const net = (ipToInt(iface.address) & mask) >>> 0;
  const size = 2 ** (32 - iface.prefixLength);
  if (size < 8) throw new ProvisionError('noAddress', `interface ${iface.name}'s subnet /${iface.prefixLength} is too small for a pool; use at least a /29`);
  let start = net + size / 2;
  let end = net + size - 2;
  const own = ipToInt(iface.address);
  if (own >= start && own <= end) {
    if (own - start > end - own) end = own - 1;
    else start = own + 1;
  }
  return { start: intToIp(start), end: intToIp(end) };
}

export interface PortUse {
  proto: 'udp' | 'tcp';
  port: number;
  local: string;
  process?: string;
  pid?: number;
  /** The holder is a `zeroboot serve`: this farm's own server, running since a previous run. */
  zeroboot: boolean;
}

/** The server's ports: DHCP and TFTP over UDP, HTTP over TCP. */
export function serverPorts(httpPort: number): { proto: 'udp' | 'tcp'; port: number; what: string }[] {
  return [
    { proto: 'udp', port: 67, what: 'DHCP' },
    { proto: 'udp', port: 69, what: 'TFTP' },
    { proto: 'tcp', port: httpPort, what: 'HTTP' },
  ];
}

function commandLine(pid: number | undefined): string[] {
  if (!pid) return [];
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function isZeroboot(argv: string[]): boolean {
  return argv.some((a) => /zeroboot(\.ts)?$/.test(a)) && argv.includes('serve');
}

/**
 * Listening sockets from `ss` lines (`-H -ln -p`): State Recv-Q Send-Q Local
 * Peer Process. A socket conflicts when it is on the wildcard address, on
 * the server's address, or pinned to the farm interface.
 */
export function parseSs(out: string, proto: 'udp' | 'tcp', iface: FarmInterface): PortUse[] {
  const uses: PortUse[] = [];
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    const local = cols[3];
    const m = /^(.*):(\d+)$/.exec(local);
    if (!m) continue;
    const [host, dev] = m[1].replace(/^\[|\]$/g, '').split('%');
    const wildcard = host === '*' || host === '0.0.0.0' || host === '::';
    if (!wildcard && host !== iface.address) continue;
    if (dev && dev !== iface.name) continue;
    const user = /users:\(\("([^"]*)",pid=(\d+)/.exec(line);
    const pid = user ? Number(user[2]) : undefined;
    const argv = commandLine(pid);
    // The program's name rather than ss's thread name (Node's main thread is "MainThread").
    const name = argv[0] ? argv[0].split('/').pop()! : user?.[1];
    uses.push({ proto, port: Number(m[2]), local, ...(user ? { process: name, pid } : {}), zeroboot: isZeroboot(argv) });
  }
  return uses;
}

/** What holds each of the server's ports; a holder other than zeroboot fails the check. */
export async function checkPorts(iface: FarmInterface, httpPort: number): Promise<PortUse[]> {
  const held: PortUse[] = [];
  for (const proto of ['udp', 'tcp'] as const) {
    const r = await runCommand('ss', ['-H', '-ln', proto === 'udp' ? '-u' : '-t', '-p']);
    if (r.code !== 0) throw new ProvisionError('portBusy', `cannot list listening sockets with ss: ${r.stderr.trim()}`);
    const wanted = serverPorts(httpPort).filter((p) => p.proto === proto).map((p) => p.port);
    held.push(...parseSs(r.stdout, proto, iface).filter((u) => wanted.includes(u.port)));
  }
  const busy = held.filter((u) => !u.zeroboot);
  if (busy.length > 0) {
    const what = busy.map((u) => `${u.proto} ${u.port} (${serverPorts(httpPort).find((p) => p.port === u.port && p.proto === u.proto)!.what}) is held by ${u.process ? `${u.process} pid ${u.pid}` : 'another process'} on ${u.local}`);
    throw new ProvisionError('portBusy', `${what.join('; ')}: stop it (or move it off this interface) and run again`);
  }
  return held;
}
