// Store files sent by the kernel (sendfile(2), boot/http/native/sendfile.c)
// instead of copied through JavaScript buffers: the copy was most of the
// server's CPU in a boot storm. Optional: without the addon (not built), for
// TLS sockets, for entries with no file behind them (chunks held in memory),
// or when the socket still has bytes queued, the caller copies as before.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from '../log.ts';

type Transfer = { readonly __sendfileTransfer: unique symbol };

/** The addon's calls; codes: 0 all sent, 1 pending (onDone follows), 2 the file ended early, < 0 -errno. */
export interface SendfileAddon {
  start(socketFd: number, fileFd: number, offset: number, length: number, onDone: (code: number, sent: number) => void): [number, number, Transfer?];
  sent(t: Transfer): number;
  cancel(t: Transfer): void;
}

const PENDING = 1;
const FILE_ENDED = 2;
/** sendfile refuses the pair (a file system or socket type it cannot splice): copy instead, from where it stopped. */
const UNSUPPORTED = new Set([-22 /* EINVAL */, -38 /* ENOSYS */, -95 /* EOPNOTSUPP */]);

type Loaded = { addon: SendfileAddon } | { missing: string };

/** The addon, or why it is not there (one line). */
export function loadSendfileAddon(file = '../../build/Release/sendfile.node'): Loaded {
  try {
    return { addon: createRequire(import.meta.url)(file) as SendfileAddon };
  } catch (e) {
    return { missing: (e as Error).message.split('\n')[0]! };
  }
}

/** How a range went: all sent; the client went away; or `copy` bytes from `at` are left for the copy path (sendfile cannot do them). */
export type SendOutcome = { kind: 'sent' } | { kind: 'closed' } | { kind: 'copy'; at: number };

/** Thrown when the file is shorter than the range its entry promised (the caller cuts the connection). */
export class FileEndedError extends Error {
  override name = 'FileEndedError';
}

interface SocketProgress {
  /** Bytes sendfile has handed to this socket by finished transfers. */
  done: number;
  transfer?: Transfer;
}

/**
 * Sends file ranges to sockets with the addon, and tells the connection
 * limits (send stall, idle) how far each socket's transfers have got: bytes
 * sent this way never pass through the socket's own counters.
 */
export class FileSender {
  private readonly addon: SendfileAddon;
  private readonly progressBy = new WeakMap<Socket, SocketProgress>();

  constructor(addon: SendfileAddon) {
    this.addon = addon;
  }

  /**
   * The addon for a server, or undefined (then downloads copy through
   * buffers): `enabled` false, or the addon not built (said once, at warn).
   */
  static open(enabled: boolean, log: Logger, load: () => Loaded = loadSendfileAddon): FileSender | undefined {
    if (!enabled) return undefined;
    const loaded = load();
    if ('addon' in loaded) return new FileSender(loaded.addon);
    log.warn('http sendfile addon not built; downloads are copied through JavaScript (run: bash scripts/setup.sh)', { error: loaded.missing });
    return undefined;
  }

  /** The socket's descriptor when sendfile can write to it: plain TCP, open, nothing queued. */
  socketFd(socket: Socket): number | undefined {
    if (socket instanceof TLSSocket || socket.destroyed || socket.writableLength > 0) return undefined;
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** Bytes sendfile has sent on `socket` so far, and whether a transfer is under way (for the stall and idle checks). */
  progress(socket: Socket): { sent: number; sending: boolean } {
    const p = this.progressBy.get(socket);
    if (!p) return { sent: 0, sending: false };
    return { sent: p.done + (p.transfer ? this.addon.sent(p.transfer) : 0), sending: p.transfer !== undefined };
  }

  /**
   * Sends `length` bytes of `fileFd` from `offset` to `socket` (descriptor
   * `socketFd`, from socketFd()); settles when done, when `closed` settles
   * (the transfer is cancelled), or with the part sendfile cannot do.
   * `sent` hears each step's bytes.
   */
  send(socket: Socket, socketFd: number, fileFd: number, offset: number, length: number, closed: Promise<void>, sent: (n: number) => void): Promise<SendOutcome> {
    const p = this.progressBy.get(socket) ?? { done: 0 };
    this.progressBy.set(socket, p);
    return new Promise<SendOutcome>((resolve, reject) => {
      /** `n`: bytes this transfer sent in all. */
      const end = (code: number, n: number) => {
        p.transfer = undefined;
        p.done += n;
        sent(n);
        if (code === 0) resolve({ kind: 'sent' });
        else if (code === FILE_ENDED) reject(new FileEndedError(`the file ended at byte ${offset + n}, before the range did`));
        else if (UNSUPPORTED.has(code)) resolve({ kind: 'copy', at: offset + n });
        else resolve({ kind: 'closed' });
      };
      const [code, n, transfer] = this.addon.start(socketFd, fileFd, offset, length, end);
      if (code !== PENDING || !transfer) return end(code, n);
      p.transfer = transfer;
      void closed.then(() => {
        if (p.transfer !== transfer) return;
        const total = this.addon.sent(transfer);
        this.addon.cancel(transfer);
        end(-104 /* ECONNRESET: the socket went first */, total);
      });
    });
  }
}
