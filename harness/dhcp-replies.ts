// Replies for many simulated DHCP clients sharing one socket on :68: the
// servers broadcast them, so each is handed to whoever waits on its xid.
// Datagrams that are not a decodable BOOTREPLY are dropped.
import type { Socket } from 'node:dgram';
import { decodeMessage, type DhcpMessage } from './dhcp-packet.ts';

/** The waiters by xid; set one before sending, delete it when done. */
export function repliesByXid(socket: Socket): Map<number, (m: DhcpMessage) => void> {
  const waiting = new Map<number, (m: DhcpMessage) => void>();
  socket.on('message', (buf: Buffer) => {
    let m: DhcpMessage;
    try {
      m = decodeMessage(buf);
    } catch {
      return;
    }
    if (m.op === 2) waiting.get(m.xid)?.(m);
  });
  return waiting;
}

/** Option 53, the DHCP message type (2 OFFER, 5 ACK, 6 NAK, ...). */
export function messageType(m: DhcpMessage): number | undefined {
  return m.options.find(([c]) => c === 53)?.[1][0];
}
