// zdb: a 0-db v2 compatible server. runZdb() is the whole program (flags in,
// exit code out); the pieces are exported for tests and other callers.
import { openEngine } from './engine/index.ts';
import type { Engine } from './engine/index.ts';
import { parseZdbArgs, ZdbUsageError, ZDB_USAGE } from './cli.ts';
import { createZdbLog, type ZdbLog } from './server/log.ts';
import { HookRunner } from './server/hooks.ts';
import { zdbId, type ZdbOptions } from './server/options.ts';
import { ZdbServer } from './server/server.ts';
import { dumpEngine } from './server/dump.ts';
import { daemonize, isDaemonChild, notifyDaemonParent } from './server/daemon.ts';

export { parseZdbArgs, ZdbUsageError, ZDB_USAGE } from './cli.ts';
export { ZdbServer } from './server/server.ts';
export type { ZdbOptions } from './server/options.ts';
export { RequestParser, RespProtocolError, DEFAULT_LIMITS } from './resp/parser.ts';

export interface ZdbIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: ZdbIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

function engineFor(o: ZdbOptions, hooks: HookRunner, log: ZdbLog): Engine {
  return openEngine({
    dataDir: o.dataDir,
    indexDir: o.indexDir,
    mode: o.mode,
    datasize: o.datasize,
    sync: o.sync,
    synctime: o.synctime > 0 ? o.synctime : undefined,
    rotateSeconds: o.rotate > 0 ? o.rotate : undefined,
    hooks: hooks.enabled ? (event, ...args) => void hooks.run(event, ...args) : undefined,
    missingData: hooks.enabled ? (file) => hooks.run('missing-data', file) === 0 : undefined,
    // the server flushes at the end of every batch, before acknowledging
    batchWrites: true,
    log: (line) => log.info(`[+] ${line}`),
  });
}

/**
 * Runs the server until SIGINT/SIGTERM (exit code 128 + signal, as the
 * reference), or returns at once for --help, --dump, --background and bad flags.
 */
export async function runZdb(argv: string[], io: ZdbIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseZdbArgs(argv);
  } catch (e) {
    if (e instanceof ZdbUsageError) {
      io.err(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (parsed.help) {
    io.out(ZDB_USAGE);
    return 0;
  }
  const o = parsed.opts;
  const log = createZdbLog({ verbose: o.verbose, write: io.out });
  log.info('[*] 0-db server (zeroboot), protocol and files of 0-db v2.0');
  for (const w of parsed.warnings) log.warn(w);

  if (o.background && !isDaemonChild()) return daemonize(o.logfile, (l) => log.info(l));

  const hooks = new HookRunner(o.hook, zdbId(o), log);
  let engine: Engine;
  try {
    engine = engineFor(o, hooks, log);
  } catch (e) {
    io.err(`[-] zdb_open: cannot open database: ${(e as Error).message}\n`);
    return 1;
  }
  log.info(`[+] system: running mode: ${o.mode === undefined ? 'mixed mode' : o.mode === 'seq' ? 'sequential keys' : 'default key-value'}`);

  if (o.dump) {
    dumpEngine(engine, (l) => io.out(l + '\n'));
    await engine.close();
    return 0;
  }

  const server = new ZdbServer({ engine, opts: o, log, hooks });
  try {
    await server.listen();
  } catch (e) {
    io.err(`[-] listen: ${(e as Error).message}\n`);
    await server.close();
    await engine.close();
    return 1;
  }
  notifyDaemonParent();

  // the ready hook blocks and must succeed before the server serves anyone
  if (hooks.enabled) {
    const status = hooks.run('ready');
    if (status !== 0) {
      io.err(`[-] hook: ready hook failed (status ${status}), stopping\n`);
      await server.close();
      await engine.close();
      return 1;
    }
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals, code: number) => {
      if (stopping) return;
      stopping = true;
      log.info('[+] signal: request cleaning');
      hooks.run('close');
      void (async () => {
        await server.close();
        await engine.close();
        resolve(code);
      })();
      void signal;
    };
    process.once('SIGINT', () => stop('SIGINT', 130));
    process.once('SIGTERM', () => stop('SIGTERM', 143));
    process.once('uncaughtException', (e) => {
      io.err(`[-] fatal: ${e.stack ?? e}\n`);
      hooks.run('crash');
      // the listeners would otherwise keep the process alive, resetting every client
      void server.close().finally(() => engine.close()).finally(() => resolve(1));
    });
  });
}
