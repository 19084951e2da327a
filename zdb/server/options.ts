// Settings of one zdb server, as the command line gives them (zdb/cli.ts
// parses the reference's flags into this).
import type { NsMode } from '../engine/index.ts';

export interface ZdbOptions {
  dataDir: string;
  indexDir: string;
  /** TCP listen address; undefined = no TCP listener (--socket without --dualnet) */
  listen?: string;
  port: number;
  socket?: string;
  dualnet: boolean;
  /** --mode; undefined = mixed mode */
  mode?: NsMode;
  datasize: number;
  /** --maxsize: size limit of the default namespace (0 = none) */
  maxsize: number;
  admin?: string;
  protect: boolean;
  hook?: string;
  sync: boolean;
  synctime: number;
  rotate: number;
  background: boolean;
  logfile?: string;
  dump: boolean;
  verbose: boolean;
}

export const DEFAULT_PORT = 9900;
export const DEFAULT_LISTEN = '::';
export const DEFAULT_DATASIZE = 256 * 1024 * 1024;

export function defaultOptions(): ZdbOptions {
  return {
    dataDir: './zdb-data',
    indexDir: './zdb-index',
    listen: DEFAULT_LISTEN,
    port: DEFAULT_PORT,
    dualnet: false,
    datasize: DEFAULT_DATASIZE,
    maxsize: 0,
    protect: false,
    sync: false,
    synctime: 0,
    rotate: 0,
    background: false,
    dump: false,
    verbose: false,
  };
}

/** The id hooks receive: the reference derives it from where the server listens. */
export function zdbId(o: ZdbOptions): string {
  return o.socket ? `unix://${o.socket}` : `tcp://${o.listen ?? DEFAULT_LISTEN}:${o.port}`;
}
