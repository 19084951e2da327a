// The socket side of one read transfer: its own ephemeral socket (the
// server's transfer ID), the retransmission timer, block bytes from the
// read-ahead, and the transfer-ID check on every incoming datagram.
import dgram from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { ErrorCode, Opcode, encodeError, encodeOack, peekAck, writeDataHeader } from './codec.ts';
import { ReadSession } from './session.ts';
import type { SessionOutput } from './session.ts';
import { ChunkReader } from './reader.ts';
import { READ_ERROR, logStranger, peerError } from './read-transfer.ts';
import type { ReadTransfer, TransferParams, TransferResult } from './read-transfer.ts';
import type { StoreEntry } from '../store.ts';
import type { Logger } from '../log.ts';

// IP literals only: skipping dns.lookup saves a tick per datagram.
const literalLookup = (address: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, address, 4);

/** The JavaScript data path: node:dgram and the pure ReadSession. */
export class Transfer implements ReadTransfer {
  readonly session: ReadSession;
  readonly peer: { address: string; port: number };
  readonly done: Promise<TransferResult>;
  private readonly entry: StoreEntry;
  private readonly socket: Socket;
  private readonly reader: ChunkReader;
  private readonly log: Logger;
  private readonly bindAddress: string;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = 0;
  /** The wait the session asked for when it last armed the timer (it backs off). */
  private armedFor = 0;
  /** Reused for DATA packets while sends complete synchronously. */
  private scratch: Buffer;
  /** Block ranges waiting for their chunk to be read, in send order. */
  private readonly waiting: [number, number][] = [];
  private readonly started = Date.now();
  private settle!: (r: TransferResult) => void;
  private closed = false;

  constructor(p: TransferParams) {
    this.entry = p.entry;
    this.peer = p.peer;
    this.log = p.log;
    this.bindAddress = p.bindAddress;
    this.reader = new ChunkReader(p.entry, p.blksize, p.windowsize);
    this.scratch = Buffer.allocUnsafe(4 + p.blksize);
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup as never });
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on('error', (e) => this.log.warn('tftp transfer socket error', { peer: this.peerName(), error: e.message }));
    const out: SessionOutput = {
      sendOack: (options) => this.send(encodeOack(options)),
      sendBlocks: (first, count) => this.sendBlocks(first, count),
      armTimer: (ms) => this.armTimer(ms),
      finish: () => this.end({ ok: true, bytes: this.entry.size, ms: Date.now() - this.started, retransmissions: this.session.retransmissions }),
      fail: (reason, error) => {
        if (error) this.send(encodeError(error.code, error.message));
        this.end({ ok: false, reason });
      },
    };
    this.session = new ReadSession(
      { size: p.entry.size, blksize: p.blksize, windowsize: p.windowsize, timeoutMs: p.timeoutMs, retries: p.retries, firstRetries: p.firstRetries, oack: p.oack },
      out,
    );
  }

  get acked(): number {
    return this.session.acked;
  }

  /** Binds the transfer socket, reads the first chunk and sends the OACK or first window. */
  async start(): Promise<number> {
    const port = await new Promise<number>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: this.bindAddress, port: 0, exclusive: true }, () => {
        this.socket.off('error', reject);
        resolve(this.socket.address().port);
      });
    });
    await this.reader.load(0);
    if (this.reader.error) {
      this.session.abort(`cannot read ${this.entry.path}: ${this.reader.error.message}`, READ_ERROR);
    } else {
      this.session.start();
    }
    return port;
  }

  /** Ends the transfer without telling the peer (server shutdown). */
  abort(reason: string): void {
    this.session.abort(reason);
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    if (rinfo.port !== this.peer.port || rinfo.address !== this.peer.address) {
      // RFC 1350: a stranger's packet must not touch the transfer; tell it so,
      // unless it is itself an error (two servers must not ping-pong errors).
      logStranger(this.log, this.peerName(), rinfo.address, rinfo.port);
      if (msg.length >= 2 && msg[0] === 0 && msg[1] === Opcode.ERROR) return;
      // Port 0 cannot be answered (dgram's send throws on it): a forged packet.
      if (rinfo.port === 0) return;
      this.socket.send(encodeError(ErrorCode.UnknownTransferId, 'Unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
    const ack = peekAck(msg);
    if (ack !== undefined) {
      this.session.onAck(ack);
      return;
    }
    const error = peerError(msg, this.log, this.peerName());
    if (error) this.session.onError(error.code, error.message);
  }

  private sendBlocks(first: number, count: number): void {
    if (this.waiting.length > 0) {
      this.waiting.push([first, count]);
      return;
    }
    const { blksize, size } = this.session;
    const last = first + count - 1;
    this.reader.release((first - 1) * blksize);
    for (let block = first; block <= last; block++) {
      const start = (block - 1) * blksize;
      const end = Math.min(size, start + blksize);
      let packet = this.scratch;
      if (!this.reader.copyTo(packet, 4, start, end)) {
        this.waiting.push([block, last - block + 1]);
        void this.reader.load(start).then(() => this.flushWaiting());
        return;
      }
      writeDataHeader(packet, block);
      if (end - start < blksize) packet = packet.subarray(0, 4 + end - start);
      this.socket.send(packet, this.peer.port, this.peer.address);
      // Usually the datagram left synchronously and the buffer is free again;
      // if it was queued, the queue owns it and the next packet gets a new one.
      if (this.socket.getSendQueueCount() > 0) this.scratch = Buffer.allocUnsafe(4 + blksize);
      if (block === last) this.reader.readAhead(end);
    }
  }

  private flushWaiting(): void {
    if (this.closed) return;
    if (this.reader.error) {
      this.session.abort(`cannot read ${this.entry.path}: ${this.reader.error.message}`, READ_ERROR);
      return;
    }
    const ranges = this.waiting.splice(0);
    for (const [first, count] of ranges) this.sendBlocks(first, count);
  }

  private armTimer(ms: number): void {
    // Re-arming a Node timer per packet costs more than the packet; note the
    // time instead and let a pending timer re-arm itself for what is left.
    this.armedAt = performance.now();
    this.armedFor = ms;
    if (!this.timer) this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    const left = this.armedAt + this.armedFor - performance.now();
    if (left > 1) {
      this.timer = setTimeout(this.onTimer, left);
      return;
    }
    this.session.onTimeout();
  };

  private send(packet: Buffer): void {
    if (!this.closed) this.socket.send(packet, this.peer.port, this.peer.address);
  }

  private end(result: TransferResult): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    // Let an error packet queued just before leave the socket first.
    setImmediate(() => {
      try {
        this.socket.close();
      } catch {}
      this.entry.close().catch(() => undefined);
      this.settle(result);
    });
  }

  private peerName(): string {
    return `${this.peer.address}:${this.peer.port}`;
  }
}
