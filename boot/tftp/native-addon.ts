// The optional native data path (boot/tftp/native/tftp_data.c): loaded once
// per server; without it (not built) transfers run on the JavaScript path.
import { createRequire } from 'node:module';
import { TftpServerError } from './limits.ts';
import type { Logger } from '../log.ts';

/** An opaque transfer handle owned by the addon. */
export type NativeHandle = { readonly __nativeTransfer: unique symbol };

export interface NativeStartParams {
  address: string;
  port: number;
  size: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  firstRetries: number;
  chunkSize: number;
  /** The encoded OACK, or null to start with DATA 1. */
  oack: Buffer | null;
  /** Chunk k is read into buffers[k % 2]; chunk 0 is there before start. */
  buffers: [Buffer, Buffer];
  /** Read chunk `index` into its buffer, then call supply(). */
  onNeed(index: number): void;
  /** A packet from the peer that is not an ACK. */
  onPacket(packet: Buffer): void;
  /** A datagram from another address or port (already answered with ERROR 5 where allowed). */
  onStranger(address: string, port: number): void;
  /** The transfer ended on its own: 0 every block acknowledged, 1 timed out (ERROR sent); the socket is closed. */
  onEnd(kind: number, tries: number, retransmissions: number): void;
  /** The transfer's thread has ended and closed the socket (after onEnd, or after stop()). */
  onClosed(): void;
}

export interface TftpDataAddon {
  /** A UDP socket bound to address:0; throws when it cannot bind. */
  open(address: string): NativeHandle;
  port(h: NativeHandle): number;
  start(h: NativeHandle, p: NativeStartParams): void;
  supply(h: NativeHandle, index: number): void;
  /** Sends `packet` (if given) to the peer and ends the transfer (onClosed follows once started); [acked, retransmissions]. */
  stop(h: NativeHandle, packet?: Buffer): [number, number];
  acked(h: NativeHandle): number;
}

export const NATIVE_END_DONE = 0;

export type DataPathChoice = 'auto' | 'native' | 'js';
type Loaded = { addon: TftpDataAddon } | { missing: string };

/** The addon, or why it is not there (one line). */
export function loadTftpDataAddon(file = '../../build/Release/tftpdata.node'): Loaded {
  const require = createRequire(import.meta.url);
  try {
    return { addon: require(file) as TftpDataAddon };
  } catch (e) {
    return { missing: (e as Error).message.split('\n')[0]! };
  }
}

/**
 * The addon for a server's data path: none for 'js'; for 'native' it must
 * load (TftpServerError otherwise); 'auto' falls back to the JS path and
 * says so once, at warn, in the server's log.
 */
export function chooseDataPath(choice: DataPathChoice, log: Logger, load: () => Loaded = loadTftpDataAddon): TftpDataAddon | undefined {
  if (choice === 'js') return undefined;
  const loaded = load();
  if ('addon' in loaded) return loaded.addon;
  if (choice === 'native') throw new TftpServerError(`the TFTP data path addon is not built (run: bash scripts/setup.sh): ${loaded.missing}`);
  log.warn('tftp native data path not built; transfers use the slower JavaScript path (run: bash scripts/setup.sh)', { error: loaded.missing });
  return undefined;
}
