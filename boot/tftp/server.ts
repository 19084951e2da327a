// The TFTP server: one listen socket for requests (handled by ReadRequests),
// one Transfer (with its own socket) per accepted read. Read-only, files come
// from the image store, a cap on concurrent transfers overall and per client
// address, and nothing a client sends can stop it.
import dgram from 'node:dgram';
import type { Socket } from 'node:dgram';
import { ReadRequests } from './requests.ts';
import { resolveLimits, TftpServerError } from './limits.ts';
import { chooseDataPath } from './native-addon.ts';
import type { DataPathChoice } from './native-addon.ts';
import type { LimitOptions } from './limits.ts';
import type { ImageStore } from '../store.ts';
import { OpenFileCache } from '../open-file-cache.ts';
import type { BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';

export { TftpServerError, DEFAULT_FIRST_RETRIES, DEFAULT_MAX_TRANSFERS_PER_CLIENT } from './limits.ts';

export interface TftpServerOptions extends LimitOptions {
  store: ImageStore;
  /** 69 normally; 0 picks a free port. */
  port: number;
  timeline: BootTimeline;
  /** Files boot loaders probe for and do without: a miss is no error (logged at debug, marked optional). */
  optionalFiles?: RegExp;
  /** TFTP carries no MAC; the DHCP server can map the client address to one. */
  macForIp?: (ip: string) => string | undefined;
  log: Logger;
  /**
   * Where the blocks of a transfer are sent from: 'native' (the C addon,
   * build/Release/tftpdata.node), 'js' (node:dgram), or 'auto' (default):
   * native when the addon is built, else JavaScript, said once in the log.
   */
  dataPath?: DataPathChoice;
}

export interface TftpServer {
  close(): Promise<void>;
  port: number;
  activeTransfers(): number;
  /** Requests waiting for a slot. */
  waitingRequests(): number;
}

const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const limits = resolveLimits(opts);
  const { log } = opts;
  const native = chooseDataPath(opts.dataPath ?? 'auto', log);
  const socket = dgram.createSocket('udp4');
  // Every PXE ROM asks for the same boot program: its file stays open a moment for the next ones.
  const files = new OpenFileCache(opts.store);
  const requests = new ReadRequests({
    store: files,
    address: opts.address,
    limits,
    timeline: opts.timeline,
    optionalFiles: opts.optionalFiles,
    macForIp: opts.macForIp,
    log,
    native,
    reply: (packet, to) => socket.send(packet, to.port, to.address),
  });
  socket.on('error', (e) => log.warn('tftp listen socket error', { error: e.message }));
  socket.on('message', (msg, rinfo) => requests.onDatagram(msg, rinfo));
  await bind(socket, opts.address, opts.port);
  // A rack powering on sends hundreds of requests (and their retransmissions) at once; the default
  // receive buffer (about 200 KiB) dropped some while the loop was busy (bench/boot-storm.ts, 1,000 clients).
  try {
    socket.setRecvBufferSize(RECV_BUFFER_BYTES);
  } catch {
    // The kernel caps it at net.core.rmem_max; the default still works.
  }
  const port = socket.address().port;
  log.info('tftp listening', { address: opts.address, port, dataPath: native ? 'native' : 'js', mtu: limits.mtu, maxTransfers: limits.maxTransfers, maxTransfersPerClient: limits.perClient, maxWaiting: limits.maxWaiting });

  let closing = false;
  return {
    port,
    activeTransfers: () => requests.active,
    waitingRequests: () => requests.queued,
    async close() {
      if (closing) return;
      closing = true;
      await requests.close();
      files.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

async function bind(socket: Socket, address: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((e: Error) => {
    // The failed bind still created the socket's file descriptor.
    socket.close();
    throw new TftpServerError(`cannot listen on ${address}:${port}/udp: ${e.message}`);
  });
}
