// How requests reach the DHCP server. dgram gives each datagram its own
// 64 KiB buffer, an address object and a call into JavaScript; with the
// dhcpio addon (io-addon.ts) one recvmmsg() reads up to a batch of
// datagrams and one call hands them over. Each datagram is copied out of
// the shared slots before the handler sees it (the decoded packet keeps
// views of its bytes). Without the addon, or when the socket's handle is
// not found, dgram's 'message' events deliver them as before.
import type { RemoteInfo, Socket } from 'node:dgram';
import { intToIp } from '../../lib/ipv4.ts';
import { socketHandle } from '../netif/index.ts';
import type { DhcpIoAddon } from './io-addon.ts';

export type OnDatagram = (buf: Buffer, from: RemoteInfo) => void;

export class BatchReceiver {
  private readonly addon: DhcpIoAddon | undefined;
  private handle: object | undefined;

  /** Starts delivering the socket's datagrams to `onDatagram`, in batches when `addon` is given. */
  constructor(socket: Socket, addon: DhcpIoAddon | undefined, onDatagram: OnDatagram) {
    const udp = addon ? socketHandle(socket) : undefined;
    if (!addon || !udp || typeof udp.recvStop !== 'function') {
      this.addon = undefined;
      socket.on('message', onDatagram);
      return;
    }
    this.addon = addon;
    const slot = addon.rxSlot;
    const bytes = Buffer.allocUnsafe(addon.rxBatch * slot);
    const meta = new Uint32Array(3 * addon.rxBatch);
    // Both readers would race for each datagram: dgram's stops before ours starts.
    udp.recvStop();
    // Requests come from few addresses (0.0.0.0 before a client has one, or its relay): one string while the sender repeats.
    let lastIp = -1;
    let lastAddress = '';
    this.handle = addon.recvStart(udp.fd, bytes, meta, (count) => {
      for (let i = 0; i < count; i++) {
        const len = meta[3 * i];
        const ip = meta[3 * i + 1];
        if (ip !== lastIp) {
          lastIp = ip;
          lastAddress = intToIp(ip);
        }
        const from: RemoteInfo = { address: lastAddress, family: 'IPv4', port: meta[3 * i + 2], size: len };
        onDatagram(Buffer.from(bytes.subarray(i * slot, i * slot + len)), from);
      }
    });
  }

  /** Whether datagrams arrive in batches. */
  get batched(): boolean {
    return this.handle !== undefined;
  }

  /** No more datagrams (before the socket closes). */
  stop(): void {
    if (this.handle && this.addon) this.addon.recvStop(this.handle);
    this.handle = undefined;
  }
}
