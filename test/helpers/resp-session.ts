// One RESP connection that sends a command and waits for exactly one reply,
// keeping the raw bytes, so two servers' answers can be compared exactly.
import net from 'node:net';
import { encodeCommand } from '../../zdb/resp/encoder.ts';
import { readReply, type RespValue } from './resp-reply.ts';

export type Answer = RespValue | { type: 'closed' };

export class RespSession {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RespSession> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RespSession(s)));
      s.once('error', reject);
    });
  }

  async command(args: (string | Buffer)[], timeoutMs = 10000): Promise<Answer> {
    this.socket.write(encodeCommand(args));
    return this.next(timeoutMs);
  }

  /** Sends bytes as they are (for malformed input) and waits for one reply or the close. */
  async raw(bytes: Buffer | string, timeoutMs = 10000): Promise<Answer> {
    this.socket.write(bytes);
    return this.next(timeoutMs);
  }

  private async next(timeoutMs: number): Promise<Answer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = readReply(this.buf);
      if (r) {
        this.buf = this.buf.subarray(r.next);
        return r.value;
      }
      if (this.ended) return { type: 'closed' };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no reply within the timeout');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
