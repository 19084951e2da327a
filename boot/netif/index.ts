// Interface facts and socket pinning. dgram cannot tell which interface a
// broadcast came in on; SO_BINDTODEVICE (via a tiny addon) pins one socket
// per interface so the server never answers on a network it was not given.
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:dgram';

export class InterfaceError extends Error {}

interface SockoptAddon {
  bindToDevice(fd: number, ifname: string): void;
}

let addon: SockoptAddon | undefined;
function loadAddon(): SockoptAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    addon = require('../../build/Release/sockopt.node') as SockoptAddon;
  } catch (e) {
    throw new InterfaceError(`the sockopt addon is not built (run: bash scripts/setup.sh): ${(e as Error).message.split('\n')[0]}`);
  }
  return addon;
}

/** Pins a bound dgram socket to one interface. */
export function bindSocketToDevice(socket: Socket, ifname: string): void {
  const fd = socketFd(socket);
  if (typeof fd !== 'number' || fd < 0) throw new InterfaceError('socket has no file descriptor yet (bind it first)');
  try {
    loadAddon().bindToDevice(fd, ifname);
  } catch (e) {
    if (e instanceof InterfaceError) throw e;
    throw new InterfaceError(`cannot bind to interface ${ifname}: ${(e as Error).message}`);
  }
}

/** What this project uses of a dgram socket's native handle. */
export interface UdpHandle {
  fd: number;
  /** Stops Node's own reading (the DHCP server reads in batches instead). */
  recvStop?: () => number;
}

/**
 * The native handle of a bound dgram socket. It lives on the socket's
 * internal state (the public-looking `_handle` getter is deprecated and
 * warns), so look the state up by shape rather than by a private name.
 */
export function socketHandle(socket: Socket): UdpHandle | undefined {
  const holder = socket as unknown as Record<symbol, unknown>;
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    const state = holder[sym] as { handle?: UdpHandle } | undefined;
    const handle = state && typeof state === 'object' ? state.handle : undefined;
    if (handle && typeof handle.fd === 'number') return handle;
  }
  return undefined;
}

/** The fd of a bound dgram socket. */
export function socketFd(socket: Socket): number | undefined {
  return socketHandle(socket)?.fd;
}

export interface InterfaceInfo {
  name: string;
  address: string;
  netmask: string;
  mac: string;
  mtu: number;
}

export function interfaceInfo(name: string): InterfaceInfo {
  const addrs = networkInterfaces()[name];
  if (!addrs) throw new InterfaceError(`no such interface: ${name}`);
  const v4 = addrs.find((a) => a.family === 'IPv4');
  if (!v4) throw new InterfaceError(`interface ${name} has no IPv4 address`);
  return { name, address: v4.address, netmask: v4.netmask, mac: v4.mac, mtu: interfaceMtu(name) };
}

/** The interface whose IPv4 address is `address`, if any. */
export function interfaceForAddress(address: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => a.family === 'IPv4' && a.address === address)) return name;
  }
  return undefined;
}

export function interfaceMtu(name: string): number {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) && mtu > 0 ? mtu : 1500;
  } catch {
    return 1500;
  }
}
