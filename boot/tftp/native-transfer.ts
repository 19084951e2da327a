// The native data path of one read transfer: the addon's thread owns the
// socket, the ACKs, the window, retransmission and the sends; this side reads the file
// into the addon's two chunk buffers when asked, decodes what the peer sends
// besides ACKs, and turns the end into a TransferResult.
import { encodeError, encodeOack } from './codec.ts';
import { chunkBytes, readFully } from './reader.ts';
import { READ_ERROR, logStranger, peerError } from './read-transfer.ts';
import type { ReadTransfer, TransferParams, TransferResult } from './read-transfer.ts';
import { NATIVE_END_DONE } from './native-addon.ts';
import type { NativeHandle, TftpDataAddon } from './native-addon.ts';

export class NativeTransfer implements ReadTransfer {
  readonly peer: { address: string; port: number };
  readonly done: Promise<TransferResult>;
  private readonly p: TransferParams;
  private readonly addon: TftpDataAddon;
  private readonly chunkSize: number;
  private readonly buffers: [Buffer, Buffer];
  private handle: NativeHandle | undefined;
  private readonly started = Date.now();
  private settle!: (r: TransferResult) => void;
  private closed = false;
  /** The addon's thread runs: `done` waits for it to close the socket. */
  private running = false;
  private result: TransferResult | undefined;
  /** Acknowledged block when the addon stopped; the handle answers while running. */
  private finalAcked = 0;

  constructor(p: TransferParams, addon: TftpDataAddon) {
    this.p = p;
    this.addon = addon;
    this.peer = p.peer;
    this.chunkSize = chunkBytes(p.blksize, p.windowsize);
    const { size } = p.entry;
    // One buffer for a file that fits one chunk; otherwise chunks alternate.
    const oneChunk = size <= this.chunkSize;
    this.buffers = [Buffer.allocUnsafeSlow(oneChunk ? size : this.chunkSize), Buffer.allocUnsafeSlow(oneChunk ? 0 : this.chunkSize)];
    this.done = new Promise((resolve) => (this.settle = resolve));
  }

  get acked(): number {
    return this.handle && !this.closed ? this.addon.acked(this.handle) : this.finalAcked;
  }

  async start(): Promise<number> {
    const h = this.addon.open(this.p.bindAddress);
    this.handle = h;
    const port = this.addon.port(h);
    if (this.closed) {
      this.addon.stop(h);
      return port;
    }
    try {
      await this.load(0);
    } catch (e) {
      this.fail(`cannot read ${this.p.entry.path}: ${(e as Error).message}`, encodeError(READ_ERROR.code, READ_ERROR.message));
      return port;
    }
    if (this.closed) return port;
    const { entry, peer, blksize, windowsize, timeoutMs, retries, oack } = this.p;
    this.addon.start(h, {
      address: peer.address,
      port: peer.port,
      size: entry.size,
      blksize,
      windowsize,
      timeoutMs,
      retries,
      firstRetries: Math.min(this.p.firstRetries ?? retries, retries),
      chunkSize: this.chunkSize,
      oack: oack.length > 0 ? encodeOack(oack) : null,
      buffers: this.buffers,
      onNeed: (index) => this.onNeed(index),
      onPacket: (packet) => {
        const error = peerError(packet, this.p.log, this.peerName());
        if (error) this.fail(`peer sent error ${error.code}: ${error.message}`);
      },
      onStranger: (address, port) => logStranger(this.p.log, this.peerName(), address, port),
      onEnd: (kind, tries, retransmissions) => {
        if (kind === NATIVE_END_DONE) this.end({ ok: true, bytes: entry.size, ms: Date.now() - this.started, retransmissions });
        else this.end({ ok: false, reason: `no answer after ${tries} retransmissions` });
      },
      onClosed: () => {
        this.running = false;
        if (!this.closed) this.end({ ok: false, reason: 'transfer thread ended' });
        else if (this.result) this.settle(this.result);
      },
    });
    this.running = true;
    return port;
  }

  abort(reason: string): void {
    this.fail(reason);
  }

  private onNeed(index: number): void {
    this.load(index).then(
      () => {
        if (!this.closed && this.handle) this.addon.supply(this.handle, index);
      },
      (e: unknown) => this.fail(`cannot read ${this.p.entry.path}: ${(e as Error).message}`, encodeError(READ_ERROR.code, READ_ERROR.message)),
    );
  }

  /** Reads chunk `index` into its buffer; rejects on a read error or a file that shrank. */
  private async load(index: number): Promise<void> {
    const base = index * this.chunkSize;
    const length = Math.min(this.chunkSize, this.p.entry.size - base);
    if (length <= 0) return;
    const got = await readFully(this.p.entry, this.buffers[index % 2]!, base, length);
    if (got < length) throw new Error(`short read at ${base}: ${got} of ${length} bytes`);
  }

  /** Ends the transfer; `packet` (an ERROR) goes to the peer first when given. */
  private fail(reason: string, packet?: Buffer): void {
    this.end({ ok: false, reason }, packet);
  }

  private end(result: TransferResult, packet?: Buffer): void {
    if (this.closed) return;
    this.closed = true;
    if (this.handle) this.finalAcked = (packet ? this.addon.stop(this.handle, packet) : this.addon.stop(this.handle))[0];
    this.p.entry.close().catch(() => undefined);
    // Like the JS path, the outcome is known once the socket is closed.
    if (this.running) this.result = result;
    else this.settle(result);
  }

  private peerName(): string {
    return `${this.peer.address}:${this.peer.port}`;
  }
}
