// The dhcpio addon (boot/dhcp/native/dhcp_io.c): batched sends (sendmmsg)
// and receives (recvmmsg) on the DHCP server's own sockets. Optional: the
// server falls back to node:dgram when it is not built.
import { createRequire } from 'node:module';

export interface DhcpIoAddon {
  /** Sends replies [0, count); returns how many were dealt with (fewer: the socket buffer is full); errors[i] = errno or 0. */
  sendBatch(fd: number, bytes: Buffer, meta: Uint32Array, count: number, errors: Int32Array): number;
  maxBatch: number;
  /** Reads datagrams in batches into `bytes` (slot i at i * rxSlot) and `meta` (length, IPv4, port per datagram), then calls onBatch(count). */
  recvStart(fd: number, bytes: Buffer, meta: Uint32Array, onBatch: (count: number) => void): object;
  recvStop(handle: object): void;
  rxBatch: number;
  rxSlot: number;
}

/** The addon, or why it is not there (one line). */
export function loadDhcpIoAddon(file = '../../build/Release/dhcpio.node'): { addon: DhcpIoAddon } | { missing: string } {
  const require = createRequire(import.meta.url);
  try {
    return { addon: require(file) as DhcpIoAddon };
  } catch (e) {
    return { missing: (e as Error).message.split('\n')[0]! };
  }
}
