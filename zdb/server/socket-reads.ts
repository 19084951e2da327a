// Reads of accepted sockets into one buffer shared by every connection,
// as net.Socket's `onread` option does for sockets a program creates: no
// 64 KiB allocation per read, no Readable stream push, 'data' event and
// nextTick per chunk (about 3 µs of a ~20 µs unpipelined request).
// net.Server offers no `onread` for the sockets it accepts, so this sets
// the same fields the option sets; where this Node lacks them the socket
// falls back to 'data' events. The chunk handed to `onChunk` is valid
// during the call only (the next read reuses the memory): the RESP parser
// copies whatever it keeps.
import type { Socket } from 'node:net';

type ReadCallback = (nread: number, buf: Buffer) => boolean | void;

interface UserBufferHandle {
  useUserBuffer(buf: Buffer): void;
}

export class SharedReadBuffer {
  private readonly buf: Buffer;

  constructor(size = 64 * 1024) {
    // its own memory, not a slice of the Buffer pool
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /**
   * Delivers `socket`'s bytes to `onChunk`. Returns false when it had to use
   * 'data' events instead (chunks are then the socket's own buffers).
   */
  attach(socket: Socket, onChunk: (chunk: Buffer) => void): boolean {
    const fields = userBufferFields(socket);
    const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> })._handle;
    if (!fields || typeof handle?.useUserBuffer !== 'function') {
      socket.on('data', onChunk);
      return false;
    }
    const buf = this.buf;
    const onRead: ReadCallback = (nread) => void onChunk(buf.subarray(0, nread));
    handle.useUserBuffer(buf);
    const s = socket as unknown as Record<symbol, unknown>;
    s[fields.buffer] = buf;
    s[fields.callback] = onRead;
    return true;
  }
}

function userBufferFields(socket: Socket): { buffer: symbol; callback: symbol } | undefined {
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description === 'kBuffer') buffer = sym;
    else if (sym.description === 'kBufferCb') callback = sym;
  }
  return buffer && callback ? { buffer, callback } : undefined;
}
