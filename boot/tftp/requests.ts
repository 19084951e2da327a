// What arrives on the TFTP request port: decoding, refusals (write requests,
// modes, limits, files the store will not give), and for an accepted read a
// Transfer in a slot, with its outcome on the log and the boot timeline.
//
// Modes: "octet" and "netascii" are both served byte for byte. Boot files are
// binary, and converting line ends would make tsize and the block offsets
// depend on the content; RFC 1350 clients asking netascii for a boot program
// get the exact bytes. "mail" (obsolete) is refused.
import type { RemoteInfo } from 'node:dgram';
import { ErrorCode, TftpDecodeError, decode, encodeError } from './codec.ts';
import type { TftpPacket, TftpRequest } from './codec.ts';
import { negotiate } from './session.ts';
import type { Negotiated } from './session.ts';
import { Transfer } from './transfer.ts';
import { NativeTransfer } from './native-transfer.ts';
import type { ReadTransfer, TransferParams, TransferResult } from './read-transfer.ts';
import type { TftpDataAddon } from './native-addon.ts';
import { TransferSlots } from './slots.ts';
import { WaitQueue } from './wait-queue.ts';
import type { TftpLimits } from './limits.ts';
import { StoreNotFoundError, StorePathError } from '../store.ts';
import type { ImageStore, StoreEntry } from '../store.ts';
import type { BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';

const SERVED_MODES = new Set(['octet', 'netascii']);
/**
 * How long a request for another file from the same port waits for the old
 * transfer to end on its own when the client's last packet to it may be in
 * flight (the final ACK, or an ERROR to an OACK), crossing the new request.
 */
export const MOVE_ON_WAIT_MS = 500;
const MOVED_ON = 'client asked for another file from the same port';

/** A client's slot: the file it asked for, its transfer, and once negotiated where the transfer ends. */
interface Slot {
  file: string;
  transfer: ReadTransfer | 'opening';
  /** The last block and the window, once negotiated. */
  end?: { block: number; window: number };
  /** A request for another file waits for this transfer to end. */
  movingOn?: boolean;
}

export interface RequestContext {
  store: ImageStore;
  /** Where transfer sockets bind (the listener's address). */
  address: string;
  limits: TftpLimits;
  timeline: BootTimeline;
  optionalFiles?: RegExp;
  macForIp?: (ip: string) => string | undefined;
  log: Logger;
  /** The native data path; transfers run on the JavaScript one without it. */
  native?: TftpDataAddon;
  /** Sends a reply from the request port. */
  reply(packet: Buffer, to: RemoteInfo): void;
}

export class ReadRequests {
  private readonly ctx: RequestContext;
  /** Per client address and port. */
  private readonly transfers = new TransferSlots<Slot>();
  private readonly waiting: WaitQueue<TftpRequest>;
  /**
   * Refusals and failures: any client on the node network can make them by the thousand. Each is on the
   * timeline and in /metrics; completed transfers are logged at debug only, as DHCP and HTTP are.
   */
  private readonly logThrottle = new LogThrottle(FLOOD_LOG_EVERY_MS);
  private closing = false;

  constructor(ctx: RequestContext) {
    this.ctx = ctx;
    this.waiting = new WaitQueue(ctx.limits.maxWaiting, ctx.limits.perClient);
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.size;
  }

  get active(): number {
    return this.transfers.size;
  }

  onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const { log } = this.ctx;
    // Port 0 cannot be answered (dgram's send throws on it): a forged packet.
    if (rinfo.port === 0) return;
    let pkt: TftpPacket;
    try {
      pkt = decode(msg);
    } catch (e) {
      const error = e instanceof TftpDecodeError ? e.message : String(e);
      log.debug('tftp malformed request ignored', { from: `${rinfo.address}:${rinfo.port}`, bytes: msg.length, error });
      return;
    }
    if (pkt.op === 'rrq') {
      this.handleRead(pkt, rinfo).catch((e: unknown) => log.error('tftp request failed', { from: rinfo.address, error: String(e) }));
    } else if (pkt.op === 'wrq') {
      this.refuse(rinfo, pkt.filename, ErrorCode.AccessViolation, 'read-only server', 'write request refused (read-only)');
    } else {
      log.debug('tftp packet on the request port ignored', { from: `${rinfo.address}:${rinfo.port}`, op: pkt.op });
    }
  }

  /** Stops taking requests and ends every running transfer. */
  async close(): Promise<void> {
    this.closing = true;
    this.waiting.clear();
    const running: Promise<unknown>[] = [];
    for (const { transfer: t } of this.transfers.values()) {
      if (t === 'opening') continue;
      t.abort('server closing');
      running.push(t.done);
    }
    await Promise.all(running);
  }

  private macKey(ip: string): string {
    return this.ctx.macForIp?.(ip) ?? `ip:${ip}`;
  }

  /** `detail`: more of what the client sent, kept in fields (the logger escapes them). */
  private refuse(to: RemoteInfo, file: string, code: number, message: string, reason: string, detail: Record<string, string> = {}): void {
    const { log, timeline } = this.ctx;
    const optional = code === ErrorCode.FileNotFound && this.ctx.optionalFiles?.test(file.replace(/\\/g, '/')) === true;
    if (optional) log.debug('tftp optional file not found', { from: to.address, file });
    else {
      const count = this.logThrottle.note(`refused ${code} ${message.split(':')[0]}`);
      if (count !== undefined) log.info('tftp request refused', { from: to.address, file, ...detail, reason, count });
    }
    timeline.record(this.macKey(to.address), 'tftp.error', { file, client: to.address, ...detail, ...(optional ? { optional: true } : {}) }, optional ? `${reason} (optional: the loader goes on without it)` : reason);
    this.ctx.reply(encodeError(code, message), to);
  }

  private async handleRead(req: TftpRequest, from: RemoteInfo): Promise<void> {
    if (this.closing || !this.takeSlot(req, from)) return;
    const entry = await this.open(req, from);
    if (!entry) return;
    if (this.closing) {
      this.free(from);
      await entry.close().catch(() => undefined);
      return;
    }
    const n = negotiate(req.options, entry.size, { mtu: this.ctx.limits.mtu, defaultTimeoutMs: this.ctx.limits.timeoutMs });
    const params: TransferParams = {
      entry,
      peer: { address: from.address, port: from.port },
      bindAddress: this.ctx.address,
      blksize: n.blksize,
      windowsize: n.windowsize,
      timeoutMs: n.timeoutMs,
      retries: this.ctx.limits.retries,
      firstRetries: this.ctx.limits.firstRetries,
      oack: n.oack,
      log: this.ctx.log,
    };
    const transfer = this.ctx.native ? new NativeTransfer(params, this.ctx.native) : new Transfer(params);
    this.transfers.set(from, { file: req.filename, transfer, end: { block: Math.floor(entry.size / n.blksize) + 1, window: n.windowsize } });
    const mac = this.macKey(from.address);
    this.ctx.timeline.record(mac, 'tftp.request', { file: entry.path, client: from.address, size: entry.size, blksize: n.blksize, windowsize: n.windowsize });
    void transfer.done.then((r) => {
      if (this.transfers.get(from)?.transfer === transfer) this.free(from);
      this.recordOutcome(r, { transfer, entry, from, mac, n });
    });
    try {
      const tid = await transfer.start();
      this.ctx.log.debug('tftp transfer started', { from: `${from.address}:${from.port}`, file: entry.path, tid, blksize: n.blksize, windowsize: n.windowsize, oack: n.oack.length > 0 });
    } catch (e) {
      transfer.abort(`cannot open a transfer socket: ${(e as Error).message}`);
    }
  }

  /** Takes a slot for the request, or refuses it (mode, per-client cap, server cap); false when not to go on. */
  private takeSlot(req: TftpRequest, from: RemoteInfo): boolean {
    const { limits, log } = this.ctx;
    const existing = this.transfers.get(from);
    if (existing) {
      const t = existing.transfer;
      // The same file: a retransmitted request, perhaps read late. A native transfer runs on its own thread,
      // so a request retransmitted before the OACK arrived can be read here after the transfer got ACKs (seen
      // in a 1,000-client storm). The running transfer answers it. A client that really started the same file
      // over from the same port stops ACKing the old transfer, which ends by its timeout; the client's next
      // retransmission then starts a new one.
      if (t === 'opening' || existing.file === req.filename || existing.movingOn) {
        log.debug('tftp duplicate request ignored', { from: `${from.address}:${from.port}`, file: req.filename, acked: t === 'opening' ? 0 : t.acked });
        return false;
      }
      // Another file from the same port (lock-step firmware and U-Boot reuse their port): the client has
      // moved on. When its last packet to the old transfer may cross this request (the ACK of the last
      // block, an ERROR ending a size probe), the old transfer gets a moment to read it, so a complete
      // download is not recorded as failed.
      if (mayEndOnItsOwn(t, existing)) {
        existing.movingOn = true;
        this.moveOnWhenEnded(existing, t, req, from);
        return false;
      }
      t.abort(MOVED_ON);
      this.transfers.delete(from);
    }
    if (!SERVED_MODES.has(req.mode)) {
      this.refuse(from, req.filename, ErrorCode.IllegalOperation, `mode not supported: ${req.mode.slice(0, 64)}`, 'mode not supported', { mode: req.mode });
      return false;
    }
    if (this.transfers.heldBy(from.address) >= limits.perClient) {
      this.refuse(from, req.filename, ErrorCode.NotDefined, 'too many transfers from your address', `too many transfers from this address (${limits.perClient})`);
      return false;
    }
    if (this.transfers.size >= limits.maxTransfers) {
      if (this.waiting.offer(req, from, Date.now())) {
        log.debug('tftp request waits for a slot', { from: `${from.address}:${from.port}`, file: req.filename, waiting: this.waiting.size });
        return false;
      }
      this.refuse(from, req.filename, ErrorCode.NotDefined, 'server busy', `server busy (${this.transfers.size} transfers, ${this.waiting.size} waiting)`);
      return false;
    }
    this.waiting.delete(from);
    this.transfers.set(from, { file: req.filename, transfer: 'opening' });
    return true;
  }

  /** Serves `req` once the slot's transfer ended, or after MOVE_ON_WAIT_MS, ending it then. */
  private moveOnWhenEnded(slot: Slot, t: ReadTransfer, req: TftpRequest, from: RemoteInfo): void {
    let gone = false;
    const go = () => {
      if (gone) return;
      gone = true;
      clearTimeout(timer);
      if (this.transfers.get(from) === slot) {
        t.abort(MOVED_ON);
        this.transfers.delete(from);
      }
      if (this.closing) return;
      this.handleRead(req, from).catch((e: unknown) => this.ctx.log.error('tftp request failed', { from: from.address, error: String(e) }));
    };
    const timer = setTimeout(go, MOVE_ON_WAIT_MS);
    void t.done.then(go);
  }

  /** Frees a slot and hands it to the oldest waiting request whose client is still asking. */
  private free(from: RemoteInfo): void {
    this.transfers.delete(from);
    const { limits, log } = this.ctx;
    while (!this.closing && this.transfers.size < limits.maxTransfers) {
      const next = this.waiting.take(Date.now(), limits.waitFreshMs);
      if (!next) return;
      const rinfo = { address: next.from.address, port: next.from.port, family: 'IPv4' as const, size: 0 };
      this.handleRead(next.req, rinfo).catch((e: unknown) => log.error('tftp request failed', { from: rinfo.address, error: String(e) }));
    }
  }

  /** Opens the requested file; on failure frees the slot, refuses, and gives undefined. */
  private async open(req: TftpRequest, from: RemoteInfo): Promise<StoreEntry | undefined> {
    try {
      return await this.ctx.store.open(req.filename);
    } catch (e) {
      this.free(from);
      if (e instanceof StorePathError) this.refuse(from, req.filename, ErrorCode.AccessViolation, 'access violation', e.message);
      else if (e instanceof StoreNotFoundError) this.refuse(from, req.filename, ErrorCode.FileNotFound, 'file not found', e.message);
      else if ((e as NodeJS.ErrnoException).code === 'EACCES') this.refuse(from, req.filename, ErrorCode.AccessViolation, 'access violation', String(e));
      else this.refuse(from, req.filename, ErrorCode.NotDefined, 'cannot open file', String(e));
      return undefined;
    }
  }

  private recordOutcome(r: TransferResult, t: { transfer: ReadTransfer; entry: StoreEntry; from: RemoteInfo; mac: string; n: Negotiated }): void {
    const { log, timeline } = this.ctx;
    const { transfer, entry, from, mac, n } = t;
    const key = `${from.address}:${from.port}`;
    if (r.ok) {
      const mibps = r.bytes / 1048576 / Math.max(r.ms / 1000, 0.001);
      log.debug('tftp transfer done', { from: key, file: entry.path, bytes: r.bytes, ms: r.ms, MiBps: Number(mibps.toFixed(1)), retransmissions: r.retransmissions });
      timeline.record(mac, 'tftp.done', { file: entry.path, bytes: r.bytes, ms: r.ms });
    } else if (isSizeProbe(r.reason, n, transfer)) {
      // RFC 2349 clients (PXE firmware) ask for tsize, read the OACK and
      // end with error 8 before the real download: routine, not a failure.
      log.debug('tftp size probe', { from: key, file: entry.path });
      timeline.record(mac, 'tftp.error', { file: entry.path, client: from.address, probe: true }, 'size probe: the client read tsize and ended the transfer before the download, as PXE firmware does');
    } else {
      const count = this.logThrottle.note('failed');
      if (count !== undefined) log.warn('tftp transfer failed', { from: key, file: entry.path, reason: r.reason, count });
      timeline.record(mac, 'tftp.error', { file: entry.path, client: from.address }, r.reason);
    }
  }
}

/** The client's next packet may end the transfer: it waits for the ACK of its OACK or of its last window. */
function mayEndOnItsOwn(t: ReadTransfer, slot: Slot): boolean {
  return t.acked === 0 || (slot.end !== undefined && t.acked + slot.end.window >= slot.end.block);
}

function isSizeProbe(reason: string, n: Negotiated, transfer: ReadTransfer): boolean {
  const askedTsize = n.oack.some(([name]) => name === 'tsize');
  return askedTsize && transfer.acked === 0 && reason.startsWith(`peer sent error ${ErrorCode.OptionRefused}:`);
}
