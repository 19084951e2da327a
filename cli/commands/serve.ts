// `zeroboot serve`: loads the YAML configuration (or the embedded default),
// applies command-line overrides, starts DHCP/TFTP/HTTP and runs until a signal.
import { parseConfig, configError, ConfigError } from '../../boot/config.ts';
import { readYamlText, parseYamlText } from '../../lib/yaml.ts';
import { keyPath, lineOfKey } from '../../boot/config-lines.ts';
import type { ServerConfig } from '../../boot/config.ts';
import { DEFAULT_CONFIG_YAML } from '../../boot/default-config.ts';
import type { BootServer } from '../../boot/server.ts';
import { createLogger } from '../../boot/log.ts';
import type { Level, Logger } from '../../boot/log.ts';
import { hostProblems, fileProblems, summary } from '../../boot/config-check.ts';
import { networkInterfaces } from 'node:os';
import { startStatusView } from '../serve-status.ts';
import type { StatusView } from '../serve-status.ts';
import { interfaceInfo } from '../../boot/netif/index.ts';
import { parseCommand, stringOpt, listOpt, intOpt, UsageError } from '../args.ts';
import type { Parsed } from '../args.ts';

export const SERVE_HELP = `Usage: zeroboot serve [options]

Runs the netboot server: DHCP (full or proxy), TFTP for the iPXE binaries,
HTTP for iPXE scripts, kernels and initrds, and the JSON API on a separate
management listener (127.0.0.1:8081 by default). When that listener is not on
loopback the API needs a bearer token, made on first start into the state
directory (file api-token, mode 0600) and printed that once.

Options:
  --config FILE        YAML configuration (default: embedded proxy-mode config)
  --interface IF       answer DHCP only on IF (repeatable); its address is
                       used as the server address unless --address is given
  --address IP         the server address clients use
  --dhcp MODE          full | proxy | off
  --http-port N        HTTP port (0 = any free port)
  --api-host IP        management listener (JSON API) address (default 127.0.0.1)
  --api-port N         management listener port (default 8081, 0 = any free port)
  --tftp-port N        TFTP port (default 69)
  --dhcp-port N        DHCP port (default 67)
  --no-tftp            do not serve TFTP
  --state-dir DIR      where leases and the API token are kept
  --log-level LEVEL    debug | info | warn | error (default info)
  --log-format FORMAT  text | json: json makes every line (logs on stderr,
                       endpoints on stdout, errors) one JSON object
  --json               the same as --log-format json
  --check              validate the configuration against this host (its
                       interfaces, the kernels and initrds the profiles name),
                       print a summary and exit: 0 when valid, 1 otherwise
  --no-status          on a terminal, print plain logs instead of the live
                       status line per machine
  -h, --help           show this help
`;

export const SERVE_OPTIONS = {
  config: { type: 'string' },
  interface: { type: 'string', multiple: true },
  address: { type: 'string' },
  dhcp: { type: 'string' },
  'http-port': { type: 'string' },
  'api-host': { type: 'string' },
  'api-port': { type: 'string' },
  'tftp-port': { type: 'string' },
  'dhcp-port': { type: 'string' },
  'no-tftp': { type: 'boolean' },
  'state-dir': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  json: { type: 'boolean' },
  check: { type: 'boolean' },
  'no-status': { type: 'boolean' },
} as const;

type Doc = Record<string, unknown>;

function sub(doc: Doc, key: string): Doc {
  const v = doc[key];
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Doc;
  const fresh: Doc = {};
  doc[key] = fresh;
  return fresh;
}

export interface ResolvedConfig {
  config: ServerConfig;
  /** Where a problem (a message starting with its key path) is: `<file>:<line>`, `<file>`, or the embedded configuration. */
  where(problem: string): string;
}

/** Reads the config document and lays the command-line flags over it. */
export async function resolveServeConfig(p: Parsed, command = 'serve'): Promise<ResolvedConfig> {
  const file = stringOpt(p, 'config');
  let doc: unknown;
  let baseDir = process.cwd();
  let text = '';
  if (file) {
    text = await readYamlText(file, configError);
    doc = parseYamlText(text, file, configError);
    const abs = file.startsWith('/') ? file : `${process.cwd()}/${file}`;
    baseDir = abs.slice(0, abs.lastIndexOf('/')) || '/';
  } else {
    doc = parseYamlText(DEFAULT_CONFIG_YAML, 'the embedded configuration', configError);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`${file}: the configuration must be a YAML mapping`);
  const server = sub(doc as Doc, 'server');
  const interfaces = listOpt(p, 'interface');
  if (interfaces.length > 0) server.interfaces = interfaces;
  const address = stringOpt(p, 'address');
  if (address) server.address = address;
  if (server.address === undefined) {
    const first = (Array.isArray(server.interfaces) ? server.interfaces : [])[0];
    if (!first) throw new UsageError(`${command}: give --interface IF or --address IP (or server.address in the config)`);
    server.address = interfaceInfo(String(first)).address;
  }
  const mode = stringOpt(p, 'dhcp');
  if (mode) {
    if (!['full', 'proxy', 'off'].includes(mode)) throw new UsageError(`${command}: --dhcp must be full, proxy or off, got "${mode}"`);
    sub(server, 'dhcp').mode = mode;
  }
  const httpPort = intOpt(p, command, 'http-port', 0, 65535);
  if (httpPort !== undefined) sub(server, 'http').port = httpPort;
  const apiHost = stringOpt(p, 'api-host');
  if (apiHost) sub(server, 'management').host = apiHost;
  const apiPort = intOpt(p, command, 'api-port', 0, 65535);
  if (apiPort !== undefined) sub(server, 'management').port = apiPort;
  const tftpPort = intOpt(p, command, 'tftp-port', 1, 65535);
  if (tftpPort !== undefined) sub(server, 'tftp').port = tftpPort;
  if (p.values['no-tftp']) sub(server, 'tftp').enabled = false;
  const dhcpPort = intOpt(p, command, 'dhcp-port', 1, 65535);
  if (dhcpPort !== undefined) sub(server, 'dhcp').port = dhcpPort;
  const stateDir = stringOpt(p, 'state-dir');
  if (stateDir) server.stateDir = stateDir;
  const where = (problem: string) => {
    if (!file) return 'the embedded configuration';
    const line = lineOfKey(text, keyPath(problem) ?? []);
    return line === undefined ? file : `${file}:${line}`;
  };
  let config: ServerConfig;
  try {
    config = parseConfig(doc, baseDir);
  } catch (e) {
    // The file's name and line first, so the line says where as well as what.
    if (e instanceof ConfigError && file && !e.source) throw new ConfigError(e.detail, { source: where(e.detail), key: e.key });
    throw e;
  }
  if (!config.dhcp.leasesFile) config.dhcp.leasesFile = `${config.stateDir}/leases.json`;
  return { config, where };
}

export function logLevel(p: Parsed, command: string): Level {
  const level = stringOpt(p, 'log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`${command}: --log-level must be debug, info, warn or error`);
  return level as Level;
}

export function describeEndpoints(server: BootServer): string {
  const e = server.endpoints;
  return [
    `http  ${e.http}`,
    e.api ? `api   ${e.api}${e.apiTokenFile ? `  (bearer token in ${e.apiTokenFile})` : ''}` : 'api   off',
    e.tftp ? `tftp  ${e.tftp}` : 'tftp  off',
    e.dhcp ? `dhcp  ${e.dhcp}` : 'dhcp  off',
  ].join('\n');
}

/** Resolves on SIGINT/SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export type LogFormat = 'text' | 'json';

export function logFormat(p: Parsed, command: string): LogFormat {
  const format = stringOpt(p, 'log-format') ?? (p.values.json === true ? 'json' : 'text');
  if (format !== 'text' && format !== 'json') throw new UsageError(`${command}: --log-format must be text or json, got "${format}"`);
  if (p.values.json === true && format !== 'json') throw new UsageError(`${command}: --json and --log-format text contradict each other`);
  return format;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const p = parseCommand('serve', argv, SERVE_OPTIONS);
  if (p.values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const json = logFormat(p, 'serve') === 'json';
  // Where log lines go can change once running: above the live status block on a terminal.
  const sink: LogSink = { write: (line) => process.stderr.write(line + '\n') };
  const log = createLogger({ level: logLevel(p, 'serve'), json, write: (line) => sink.write(line) });
  if (json) warningsAsRecords(log);
  try {
    return await serve(p, json, log, sink);
  } catch (e) {
    // JSON readers get the failure as a record too; text keeps the CLI's one `zeroboot: ...` line.
    if (!json) throw e;
    log.error((e instanceof Error ? e.message : String(e)).split('\n')[0], { error: e instanceof Error ? e.name : 'Error' });
    return e instanceof UsageError ? 2 : 1;
  }
}

/** Node's own warnings (deprecations, listener leaks) as log records instead of its plain `(node:pid) Warning:` lines. */
function warningsAsRecords(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn(w.message, { warning: w.name }));
}

interface LogSink {
  write(line: string): void;
}

async function serve(p: Parsed, json: boolean, log: Logger, sink: LogSink): Promise<number> {
  if (p.positionals.length > 0) throw new UsageError(`serve: unexpected argument "${p.positionals[0]}"`);
  const { config, where } = await resolveServeConfig(p);
  const source = stringOpt(p, 'config') ?? 'the embedded configuration';
  const hostIssues = hostProblems(config, networkInterfaces());
  if (p.values.check) {
    const problems = [...hostIssues, ...(await fileProblems(config))];
    for (const problem of problems) {
      if (json) log.error(problem, { config: where(problem) });
      else process.stderr.write(`zeroboot: ${where(problem)}: ${problem}\n`);
    }
    if (problems.length > 0) return 1;
    if (json) process.stdout.write(JSON.stringify({ check: 'ok', config: source, summary: summary(config) }) + '\n');
    else process.stdout.write(`${source}: valid: ${summary(config)}\n`);
    return 0;
  }
  // These would only fail later, at a bind or on the wire, with less to say.
  if (hostIssues.length > 0) throw new ConfigError(hostIssues[0], { source: where(hostIssues[0]) });
  // A kernel may be built after the server starts (it reads files per request): a warning, not a refusal.
  for (const problem of await fileProblems(config)) log.warn(problem, { config: where(problem) });
  const { startBootServer } = await import('../../boot/server.ts');
  const server = await startBootServer(config, log);
  if (json) process.stdout.write(JSON.stringify({ listening: server.endpoints }) + '\n');
  else process.stdout.write(`zeroboot serve: listening\n${describeEndpoints(server)}\n`);
  // The one time the token is shown; afterwards it is only in the file.
  if (server.apiToken?.created) {
    if (json) process.stdout.write(JSON.stringify({ apiToken: server.apiToken.token, file: server.apiToken.file }) + '\n');
    else process.stdout.write(`api token (new; shown only now, kept in ${server.apiToken.file}): ${server.apiToken.token}\n`);
  }
  const view = !json && process.stdout.isTTY && p.values['no-status'] !== true ? statusView(server, config, sink) : undefined;
  const sig = await untilSignal();
  view?.close();
  log.info('stopping', { signal: sig });
  await server.close();
  return 0;
}

/** The live block on stdout; log lines are written above it when they go to the same terminal. */
function statusView(server: BootServer, config: ServerConfig, sink: LogSink): StatusView {
  const hostnames = new Map(config.machines.filter((m) => m.hostname).map((m) => [m.mac, m.hostname!]));
  const view = startStatusView({ timeline: server.timeline, stream: process.stdout, hostnameOf: (mac) => hostnames.get(mac) });
  const plain = sink.write;
  if (process.stderr.isTTY) sink.write = (line) => view.log(line);
  return {
    log: (line) => view.log(line),
    close() {
      view.close();
      sink.write = plain;
    },
  };
}
