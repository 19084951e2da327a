// How replies leave a DHCP socket. dgram's send costs, per reply, an address
// lookup that answers on the next tick, a send request object and one
// sendmsg(); under a flood that was close to a third of the server's busy
// time. With the dhcpio addon (io-addon.ts) the replies
// of one event-loop turn are copied into one buffer and go out with one
// sendmmsg() on the same socket, at the end of the turn (setImmediate) or
// when the batch is full. Without it, each reply goes through dgram as before.
import type { Socket } from 'node:dgram';
import { getSystemErrorName } from 'node:util';
import { intToIp, ipToInt } from '../../lib/ipv4.ts';
import { socketFd } from '../netif/index.ts';
import type { DhcpIoAddon } from './io-addon.ts';

/** Where the packet handler puts a reply; a dgram Socket is one. */
export interface ReplyOut {
  send(bytes: Buffer, port: number, host: string): void;
}

/** A DHCP reply is at most an interface MTU; 1500 covers Ethernet, larger ones make the batch flush sooner. */
const STAGING_BYTES = 64 * 1500;

export class ReplySender implements ReplyOut {
  private readonly socket: Socket;
  private readonly addon: DhcpIoAddon | undefined;
  private readonly fd: number;
  private readonly onError: (e: Error) => void;
  private readonly max: number;
  private readonly staging: Buffer;
  private readonly meta: Uint32Array;
  private readonly errors: Int32Array;
  private count = 0;
  private used = 0;
  private scheduled = false;
  private closed = false;
  /** dgram drops a send error unless the send has a callback (no 'error' event): one shared callback hears them. */
  private readonly sent = (e: Error | null) => {
    if (e) this.onError(e);
  };
  private readonly flushSoon = () => {
    this.scheduled = false;
    this.flush();
  };

  /** `addon` undefined: plain dgram sends. `onError` hears each reply the kernel refused. */
  constructor(socket: Socket, addon: DhcpIoAddon | undefined, onError: (e: Error) => void) {
    this.socket = socket;
    this.onError = onError;
    const fd = addon ? socketFd(socket) : undefined;
    this.addon = fd === undefined ? undefined : addon;
    this.fd = fd ?? -1;
    this.max = Math.min(64, addon?.maxBatch ?? 0);
    this.staging = this.addon ? Buffer.allocUnsafe(STAGING_BYTES) : Buffer.alloc(0);
    this.meta = new Uint32Array(4 * this.max);
    this.errors = new Int32Array(this.max);
  }

  /** Whether replies go out in batches (the addon loaded and the socket's fd was found). */
  get batched(): boolean {
    return this.addon !== undefined;
  }

  send(bytes: Buffer, port: number, host: string): void {
    if (this.closed) return;
    if (!this.addon || bytes.length > this.staging.length) {
      this.socket.send(bytes, port, host, this.sent);
      return;
    }
    if (this.count === this.max || this.used + bytes.length > this.staging.length) this.flush();
    const i = 4 * this.count++;
    this.meta[i] = this.used;
    this.meta[i + 1] = bytes.length;
    this.meta[i + 2] = ipToInt(host);
    this.meta[i + 3] = port;
    this.used += bytes.copy(this.staging, this.used);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Sends what is queued now. */
  flush(): void {
    const count = this.count;
    // After close() the fd may already belong to another file.
    if (count === 0 || !this.addon || this.closed) return;
    this.count = 0;
    this.used = 0;
    let done: number;
    try {
      done = this.addon.sendBatch(this.fd, this.staging, this.meta, count, this.errors);
    } catch (e) {
      this.onError(e as Error);
      return;
    }
    for (let i = 0; i < done; i++) {
      const errno = this.errors[i];
      if (errno) this.onError(sendError(errno, this.meta[4 * i + 2], this.meta[4 * i + 3]));
    }
    // The socket buffer is full: the rest wait in dgram's queue, as every reply did without the addon.
    for (let i = done; i < count; i++) {
      const m = 4 * i;
      const copy = Buffer.from(this.staging.subarray(this.meta[m], this.meta[m] + this.meta[m + 1]));
      this.socket.send(copy, this.meta[m + 3], intToIp(this.meta[m + 2]), this.sent);
    }
  }

  /** Sends what is queued and closes the socket; later replies are dropped (the fd may be another file's by then). */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    // dgram sends to an address after a tick (its lookup): closing now would drop those.
    if (this.addon) this.socket.close();
    else setImmediate(() => this.socket.close());
  }
}

function sendError(errno: number, host: number, port: number): Error {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`send ${code} ${intToIp(host)}:${port}`), { code, errno: -errno, syscall: 'send' });
}
