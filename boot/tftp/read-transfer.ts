// What both data paths of a read transfer share: their parameters, outcome
// and face to the request port, and the handling of a peer's non-ACK packet.
import { ErrorCode, TftpDecodeError, decode } from './codec.ts';
import type { ReadSessionOptions } from './session.ts';
import type { StoreEntry } from '../store.ts';
import type { Logger } from '../log.ts';

/** The negotiated session (its size comes from the entry) and where it runs. */
export interface TransferParams extends Omit<ReadSessionOptions, 'size'> {
  entry: StoreEntry;
  peer: { address: string; port: number };
  bindAddress: string;
  log: Logger;
}

export type TransferResult = { ok: true; bytes: number; ms: number; retransmissions: number } | { ok: false; reason: string };

/** A running read transfer as the request port sees it, on either data path. */
export interface ReadTransfer {
  readonly peer: { address: string; port: number };
  readonly done: Promise<TransferResult>;
  /** Highest block the peer acknowledged in order (0 before any, and while the OACK waits). */
  readonly acked: number;
  /** Binds the transfer socket, reads the first chunk and sends the OACK or first window; resolves the port. */
  start(): Promise<number>;
  /** Ends the transfer without telling the peer (server shutdown, a restart from the same port). */
  abort(reason: string): void;
}

export const READ_ERROR = { code: ErrorCode.NotDefined, message: 'cannot read file' };

/** A packet from the peer that is not an ACK: its ERROR, or undefined when it is to be ignored (logged at debug). */
export function peerError(msg: Buffer, log: Logger, peer: string): { code: number; message: string } | undefined {
  try {
    const pkt = decode(msg);
    if (pkt.op === 'error') return pkt;
    log.debug('tftp unexpected packet on a read transfer ignored', { peer, op: pkt.op });
  } catch (e) {
    const error = e instanceof TftpDecodeError ? e.message : String(e);
    log.debug('tftp malformed packet ignored', { peer, bytes: msg.length, error });
  }
  return undefined;
}

export function logStranger(log: Logger, peer: string, address: string, port: number): void {
  log.debug('tftp packet from unknown transfer id', { peer, from: `${address}:${port}` });
}
