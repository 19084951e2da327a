// Which interfaces the DHCP server listens on, and its UDP sockets: one per
// interface and port, pinned with SO_BINDTODEVICE so a multi-homed host never
// answers on a network it was not given.
import dgram from 'node:dgram';
import type { Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { bindSocketToDevice, interfaceForAddress, interfaceInfo, InterfaceError } from '../netif/index.ts';

export class DhcpServerError extends Error {}

const ZERO = '0.0.0.0';

export interface ServedInterface {
  name: string;
  /** Our address on this network: option 54 and siaddr. */
  address: string;
  mtu: number;
}

/** Interfaces to serve: the given ones, else the one carrying the server address. */
export function resolveInterfaces(address: string, names: string[]): ServedInterface[] {
  if (names.length === 0) {
    const name = interfaceForAddress(address);
    if (!name) {
      throw new DhcpServerError(`server.address ${address} is not on any interface of this host; set server.interfaces or fix server.address`);
    }
    names = [name];
  }
  return names.map((name) => {
    let info;
    try {
      info = interfaceInfo(name);
    } catch (e) {
      if (e instanceof InterfaceError) throw new DhcpServerError(`${e.message}: check server.interfaces (ip -br addr shows the host's interfaces)`);
      throw e;
    }
    const own = (networkInterfaces()[name] ?? []).some((a) => a.family === 'IPv4' && a.address === address);
    return { name, address: own ? address : info.address, mtu: info.mtu };
  });
}

function bindError(e: NodeJS.ErrnoException, port: number, ifname: string): DhcpServerError {
  if (e.code === 'EADDRINUSE') return new DhcpServerError(`UDP port ${port} on ${ifname} is in use by a socket without SO_REUSEADDR; stop the other DHCP server or use server.dhcp.mode: off`);
  if (e.code === 'EACCES') return new DhcpServerError(`no permission to bind UDP port ${port}; run as root or grant CAP_NET_BIND_SERVICE`);
  return new DhcpServerError(`cannot open UDP port ${port} on ${ifname}: ${e.message}`);
}

export async function openSocket(port: number, ifname: string): Promise<Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      // The failed bind still created the socket's file descriptor.
      socket.close();
      reject(bindError(e as NodeJS.ErrnoException, port, ifname));
    };
    socket.once('error', onError);
    socket.bind(port, ZERO, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  try {
    bindSocketToDevice(socket, ifname);
    socket.setBroadcast(true);
  } catch (e) {
    socket.close();
    if (e instanceof InterfaceError) throw new DhcpServerError(e.message);
    throw e;
  }
  // Bursts (perfdhcp, a rack powering on) outrun the default receive buffer.
  try {
    socket.setRecvBufferSize(4 * 1024 * 1024);
  } catch {
    // The kernel caps it at net.core.rmem_max; the default still works.
  }
  return socket;
}
