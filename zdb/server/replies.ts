// The replies of one batch of requests, written to the socket in one go at
// the end of the batch: with -P 16 sixteen replies cost one write(2).
// Text parts are ASCII (the reference's replies are), so they are joined as
// latin1 and turned into bytes once; payloads stay Buffers.

const SMALL_PAYLOAD = 1024;

export class ReplyBuffer {
  private parts: Buffer[] = [];
  private text = '';
  private size = 0;

  get empty(): boolean {
    return this.size === 0;
  }

  /** Bytes pushed since the last take(). */
  get length(): number {
    return this.size;
  }

  /** ASCII reply text (simple strings, errors, integers, headers). */
  push(s: string): void {
    this.text += s;
    this.size += s.length;
  }

  /** Raw bytes, as they are (an already encoded reply). */
  pushBytes(b: Buffer): void {
    if (b.length < SMALL_PAYLOAD) {
      this.text += b.toString('latin1');
    } else {
      this.cut();
      this.parts.push(b);
    }
    this.size += b.length;
  }

  /** A bulk string reply around `payload`. */
  pushBulk(payload: Buffer): void {
    this.push(`$${payload.length}\r\n`);
    this.pushBytes(payload);
    this.push('\r\n');
  }

  /**
   * Everything pushed so far as one latin1 string, when all of it is text
   * (the socket writes a string without a Buffer made for it); undefined
   * when payloads are held as Buffers (then take()).
   */
  takeText(): string | undefined {
    if (this.parts.length > 0) return undefined;
    const text = this.text;
    this.text = '';
    this.size = 0;
    return text;
  }

  /** Everything pushed so far, in order; the buffer is empty afterwards. */
  take(): Buffer[] {
    this.cut();
    const out = this.parts;
    this.parts = [];
    this.size = 0;
    return out;
  }

  private cut(): void {
    if (this.text.length > 0) {
      this.parts.push(Buffer.from(this.text, 'latin1'));
      this.text = '';
    }
  }
}
