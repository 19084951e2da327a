// The reference's command line (zdbd, getopt_long_only): `--flag value`,
// `--flag=value`, `-flag value`, unambiguous prefixes. Same names, defaults
// and refusals; refusals carry the reference's message.
import type { NsMode } from './engine/index.ts';
import { defaultOptions, DEFAULT_LISTEN, type ZdbOptions } from './server/options.ts';

export class ZdbUsageError extends Error {
  override name = 'ZdbUsageError';
}

const FLAGS: Record<string, boolean> = {
  data: true,
  index: true,
  listen: true,
  port: true,
  socket: true,
  dualnet: false,
  verbose: false,
  sync: false,
  synctime: true,
  dump: false,
  mode: true,
  background: false,
  logfile: true,
  admin: true,
  hook: true,
  datasize: true,
  maxsize: true,
  protect: false,
  rotate: true,
  help: false,
};

export const ZDB_USAGE = `Usage: zeroboot zdb [options]   (a 0-db v2 compatible server)

 Database settings:
  --data  <dir>       datafiles directory (default ./zdb-data)
  --index <dir>       indexfiles directory (default ./zdb-index)
  --mode  <mode>      select working mode:
                       > user: default user key-value mode
                       > seq: sequential keys generated
                      note: if not specified, zdb will run in mixed mode
  --datasize <size>   maximum datafile size before split (default: 256.00 MB)

 Network options:
  --listen <addr>     listen address (default ${DEFAULT_LISTEN})
  --port   <port>     listen port (default 9900)
  --socket <path>     unix socket path (override listen and port without --dualnet)
  --dualnet           listen on unix socket and tcp socket

 Administrative:
  --hook     <file>   execute external hook script
  --admin    <pass>   set admin password
  --maxsize  <size>   set default namespace maximum datasize (in bytes)
  --protect           set default namespace protected by admin password

 Useful tools:
  --verbose           enable verbose (debug) information
  --dump              only dump index contents, then exit (debug)
  --sync              force all write to be synced
  --synctime <secs>   force sync of written data at most after this many seconds
  --background        run in background (daemon), when ready
  --logfile <file>    log file (only in daemon mode)
  --rotate <secs>     force file (index and data) rotation after x seconds
  --help              print this message
`;

function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? Number(m[1]) : 0;
}

function resolveFlag(name: string, shown: string): string {
  if (name in FLAGS) return name;
  const matches = Object.keys(FLAGS).filter((f) => f.startsWith(name));
  if (matches.length === 1 && name.length > 0) return matches[0];
  if (matches.length > 1 && name.length > 0) throw new ZdbUsageError(`option '${shown}' is ambiguous; possibilities: ${matches.map((m) => `'--${m}'`).join(' ')}`);
  throw new ZdbUsageError(`unrecognized option '${shown}'`);
}

export interface ParsedZdbArgs {
  opts: ZdbOptions;
  help: boolean;
  /** notices the reference prints for deprecated values (--mode direct) */
  warnings: string[];
}

export function parseZdbArgs(argv: string[]): ParsedZdbArgs {
  const o = defaultOptions();
  const warnings: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      if (i + 1 < argv.length) throw new ZdbUsageError(`unexpected argument '${argv[i + 1]}'`);
      break;
    }
    if (!arg.startsWith('-') || arg === '-') throw new ZdbUsageError(`unexpected argument '${arg}'`);
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const shown = eq >= 0 ? arg.slice(0, arg.indexOf('=')) : arg;
    const flag = resolveFlag(eq >= 0 ? body.slice(0, eq) : body, shown);
    let value: string | undefined;
    if (FLAGS[flag]) {
      if (eq >= 0) value = body.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new ZdbUsageError(`option '--${flag}' requires an argument`);
    } else if (eq >= 0) throw new ZdbUsageError(`option '--${flag}' doesn't allow an argument`);

    const v = value ?? '';
    switch (flag) {
      case 'data':
        o.dataDir = v;
        break;
      case 'index':
        o.indexDir = v;
        break;
      case 'listen':
        o.listen = v;
        break;
      case 'port': {
        const n = Number(v);
        if (!/^\d+$/.test(v) || n > 65535) throw new ZdbUsageError(`[-] invalid port '${v}'`);
        o.port = n;
        break;
      }
      case 'socket':
        o.socket = v;
        break;
      case 'dualnet':
        o.dualnet = true;
        break;
      case 'verbose':
        o.verbose = true;
        break;
      case 'sync':
        o.sync = true;
        break;
      case 'synctime':
        o.synctime = atoi(v);
        break;
      case 'dump':
        o.dump = true;
        break;
      case 'mode':
        o.mode = parseMode(v, warnings);
        break;
      case 'background':
        o.background = true;
        break;
      case 'logfile':
        o.logfile = v;
        break;
      case 'admin':
        o.admin = v;
        break;
      case 'hook':
        o.hook = v;
        break;
      case 'datasize': {
        const n = atoi(v);
        if (n >= 0xffffffff) throw new ZdbUsageError(`[-] datasize cannot be larger than ${0xffffffff} bytes (4096 MB)`);
        o.datasize = n;
        break;
      }
      case 'maxsize':
        o.maxsize = atoi(v);
        break;
      case 'protect':
        o.protect = true;
        break;
      case 'rotate':
        o.rotate = atoi(v);
        break;
      case 'help':
        help = true;
        break;
    }
  }
  if (o.protect && o.admin === undefined) throw new ZdbUsageError('[-] protected mode only works with admin password');
  // a unix socket replaces TCP unless --dualnet asks for both
  if (o.socket && !o.dualnet) o.listen = undefined;
  return { opts: o, help, warnings };
}

function parseMode(v: string, warnings: string[]): NsMode {
  if (v === 'user') return 'user';
  if (v === 'seq') return 'seq';
  if (v === 'direct') {
    warnings.push("[!] WARNING: direct mode doesn't exists anymore !", "[!] WARNING: this mode is replaced by 'sequential' mode");
    return 'seq';
  }
  throw new ZdbUsageError(`[-] invalid mode '${v}': mode 'user', 'seq' or 'direct' expected`);
}
