// The server's configuration: one YAML file, validated into typed values with
// errors that name the offending key, so a farmer can fix the file.
import { isIP, isIPv4 } from 'node:net';
import type { Group, Labels, MachineOverride, Profile } from './selection.ts';
import { LABELS } from './selection.ts';
import { normalizeMac } from '../lib/mac.ts';
import { shimPath } from '../lib/loaders.ts';
import { readYamlFile } from '../lib/yaml.ts';
import { ipToInt } from '../lib/ipv4.ts';
import { ConfigError, configError } from './config-error.ts';
import { checkRanges } from './config-ranges.ts';
import { DHCP_MODES } from './dhcp/settings.ts';
import type { DhcpPoolSettings, DhcpServeMode } from './dhcp/settings.ts';
import { parseStoreUrl } from '../flist/stores/url.ts';
import { StoreUrlError } from '../flist/stores/errors.ts';
import { didYouMean } from '../lib/suggest.ts';
import { DEFAULT_MEDIA_LIMITS } from './http/bootstrap-cache.ts';
import { parsePgUrl, PgUrlError } from './state/pg-url.ts';

export { ConfigError, configError };

// the DHCP server's own definitions: the config names them, it does not repeat them
export { DHCP_MODES };
export type DhcpMode = DhcpServeMode;

/** auto: a bearer token unless the management listener is on loopback. */
export type ManagementAuth = 'auto' | 'token' | 'none';

export interface ManagementConfig {
  enabled: boolean;
  host: string;
  port: number;
  auth: ManagementAuth;
  console: ConsoleConfig;
}

/** Rig VM serial consoles in the dashboard (boot/http/console-hub.ts, console-socket.ts). */
export interface ConsoleConfig {
  /** Viewers may type on the console; needs the management token. */
  input: boolean;
  /** Output kept per VM for a viewer who opens its console later. */
  scrollbackBytes: number;
  /** Console viewers (websockets) at once. */
  maxClients: number;
}

export type PoolConfig = DhcpPoolSettings;

/** Flists offered to nodes on the HTTP port: a folder of .fl files and the chunk store their chunks are read from. */
export interface FlistsConfig {
  dir: string;
  /** A chunk store URL (dir://, zdb://, http(s)://, s3://), checked to parse. */
  store: string;
}

export interface ServerConfig {
  /** Interfaces to answer on; empty means the one the address is on. */
  interfaces: string[];
  /** Address of this server as clients see it (siaddr, option 54, URLs). */
  address: string;
  dhcp: {
    mode: DhcpMode;
    port: number;
    proxyPort: number;
    pool?: PoolConfig;
    leasesFile?: string;
    /** Full mode: NAK or answer REQUESTs from clients without a record, as the only server of the segment (RFC 2131 4.3.2 silence otherwise). */
    authoritative: boolean;
    /** Run the DHCP server on its own worker thread (boot/dhcp/thread.ts), so HTTP, TFTP and collections here cannot delay replies. */
    thread: boolean;
  };
  tftp: { enabled: boolean; port: number; maxTransfers: number; maxTransfersPerClient: number; maxWaiting: number; timeoutMs: number; retries: number; firstRetries: number };
  http: { port: number; host: string; publicUrl?: string; maxConnections: number; maxConnectionsPerAddress: number; sendStallMs: number };
  /** The bootstrap grammar's media built per request (/uefi, /iso, /usb): cached under <stateDir>/media. */
  media: MediaLimits;
  /** Where the JSON API listens: apart from the node-facing HTTP port. */
  management: ManagementConfig;
  /** Directory of iPXE binaries served over TFTP. */
  ipxeDir: string;
  /** Store mounts: virtual prefix -> directory. */
  mounts: { prefix: string; dir: string }[];
  profiles: Profile[];
  groups: Group[];
  machines: MachineOverride[];
  stateDir: string;
  flists?: FlistsConfig;
  /** A PostgreSQL URL: shared state (registry, leases, machine summaries) lives there; absent: files in stateDir. Holds a password: never log it. */
  pg?: string;
}

export interface MediaLimits {
  /** Bytes of built media kept on disk, least recently used dropped first. */
  maxCacheBytes: number;
  /** Builds at once. */
  maxBuilds: number;
  /** Builds waiting for a slot before a new medium is answered 503. */
  maxQueuedBuilds: number;
  /** Media requests one client address may have waiting. */
  maxPerAddress: number;
  /** A build running longer is stopped (its tools' process group killed) and its requests answered 503. */
  buildTimeoutMs: number;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, where: string, fallback?: string): string {
  const v = o[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`${where}.${key} is required`);
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(`${where}.${key} must be a string`);
  return String(v);
}

/** An optional yes/no key: absent is undefined, anything but a boolean is an error. */
function flag(o: Obj, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(`${where}.${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function num(o: Obj, key: string, where: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${where}.${key} must be an integer between ${min} and ${max}`);
  }
  return n;
}

function ipv4(o: Obj, key: string, where: string, fallback?: string): string {
  const v = str(o, key, where, fallback);
  if (!isIPv4(v)) throw new ConfigError(`${where}.${key} must be an IPv4 address, got "${v}"`);
  return v;
}

/** `where` joined with a key: top-level keys ("config") stand alone. */
function at(where: string, key: string): string {
  return where === 'config' ? key : `${where}.${key}`;
}

/** Refuses a key the mapping does not have, naming the likely intended one: a typo must not silently mean a default. */
function knownKeys(o: Obj, where: string, known: readonly string[]): Obj {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ConfigError(`${at(where, k)}: unknown key${didYouMean(k, known)}`);
  return o;
}

function section(o: Obj, key: string, where: string, known: readonly string[]): Obj {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new ConfigError(`${at(where, key)} must be a mapping`);
  return knownKeys(v, at(where, key), known);
}

/** Each entry of a list of mappings, its keys checked. */
function entries(o: Obj, key: string, known: readonly string[]): { raw: Obj; where: string; i: number }[] {
  return list(o, key, 'config').map((raw, i) => {
    const where = `${key}[${i}]`;
    if (!isObj(raw)) throw new ConfigError(`${where} must be a mapping`);
    return { raw: knownKeys(raw, where, known), where, i };
  });
}

function list(o: Obj, key: string, where: string): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ConfigError(`${where}.${key} must be a list`);
  return v;
}

function args(v: unknown, where: string): Record<string, string | number | null> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new ConfigError(`${where} must be a mapping of kernel arguments`);
  const out: Record<string, string | number | null> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!/^[A-Za-z0-9_.:-]+$/.test(k)) throw new ConfigError(`${where}: "${k}" is not a valid kernel argument name`);
    if (val === null || typeof val === 'string' || typeof val === 'number') out[k] = val;
    else if (typeof val === 'boolean') out[k] = val ? null : String(val);
    else throw new ConfigError(`${where}.${k} must be a string or number`);
  }
  return out;
}

function labels(v: unknown, where: string): Labels {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new ConfigError(`${where} must be a mapping of labels`);
  const out: Labels = {};
  for (const [k, val] of Object.entries(v)) {
    if (!(LABELS as readonly string[]).includes(k)) throw new ConfigError(`${where}.${k}: unknown label${didYouMean(k, LABELS)}`);
    out[k as keyof Labels] = String(val);
  }
  return out;
}

function mac(o: Obj, where: string): string {
  const raw = str(o, 'mac', where);
  const m = normalizeMac(raw);
  if (!m) throw new ConfigError(`${where}.mac: "${raw}" is not a MAC address`);
  return m;
}

export function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1';
}

/** Whether the management API asks for the bearer token. */
export function managementNeedsToken(m: ManagementConfig): boolean {
  return m.auth === 'token' || (m.auth === 'auto' && !isLoopback(m.host));
}

function management(server: Obj): ManagementConfig {
  const where = 'server.management';
  const m = section(server, 'management', 'server', ['enabled', 'host', 'port', 'auth', 'console']);
  const host = str(m, 'host', where, '127.0.0.1');
  if (!isIP(host)) throw new ConfigError(`${where}.host must be an IP address, got "${host}"`);
  const auth = str(m, 'auth', where, 'auto');
  if (auth !== 'auto' && auth !== 'token' && auth !== 'none') throw new ConfigError(`${where}.auth must be auto, token or none, got "${auth}"`);
  if (auth === 'none' && !isLoopback(host)) {
    throw new ConfigError(`${where}.auth: none is allowed only on a loopback host; ${host} lets other hosts read every machine's leases and kernel arguments (use auto or token)`);
  }
  const c = section(m, 'console', where, ['input', 'scrollbackBytes', 'maxClients']);
  const cw = `${where}.console`;
  const console: ConsoleConfig = { input: flag(c, 'input', cw) ?? false, scrollbackBytes: num(c, 'scrollbackBytes', cw, 256 * 1024, 4096, 16 * 1024 * 1024), maxClients: num(c, 'maxClients', cw, 8, 1, 64) };
  const out: ManagementConfig = { enabled: flag(m, 'enabled', where) ?? true, host, port: num(m, 'port', where, 8081, 0, 65535), auth, console };
  if (console.input && !managementNeedsToken(out)) throw new ConfigError(`${cw}.input: typing on consoles needs the management token; set ${where}.auth: token`);
  return out;
}

function media(server: Obj): MediaLimits {
  const where = 'server.media';
  const m = section(server, 'media', 'server', ['maxCacheBytes', 'maxBuilds', 'maxQueuedBuilds', 'maxPerAddress', 'buildTimeoutMs']);
  const d = DEFAULT_MEDIA_LIMITS;
  return {
    maxCacheBytes: num(m, 'maxCacheBytes', where, d.maxBytes, 0, Number.MAX_SAFE_INTEGER),
    maxBuilds: num(m, 'maxBuilds', where, d.maxBuilds, 1, 64),
    maxQueuedBuilds: num(m, 'maxQueuedBuilds', where, d.maxQueued, 0, 10_000),
    maxPerAddress: num(m, 'maxPerAddress', where, d.maxPerAddress, 1, 10_000),
    buildTimeoutMs: num(m, 'buildTimeoutMs', where, d.buildTimeoutMs, 1000, 3_600_000),
  };
}

function flists(doc: Obj, resolve: (p: string) => string): FlistsConfig | undefined {
  if (doc.flists === undefined || doc.flists === null) return undefined;
  const f = section(doc, 'flists', 'config', ['dir', 'store']);
  const dir = resolve(str(f, 'dir', 'flists'));
  const store = str(f, 'store', 'flists');
  try {
    parseStoreUrl(store);
  } catch (e) {
    if (e instanceof StoreUrlError) throw new ConfigError(`flists.store: ${e.message}`);
    throw e;
  }
  return { dir, store };
}

function pgUrl(doc: Obj): string | undefined {
  if (doc.pg === undefined || doc.pg === null) return undefined;
  if (typeof doc.pg !== 'string') throw new ConfigError('pg must be a URL such as postgresql://zeroboot:password@db.example:5432/zeroboot');
  try {
    parsePgUrl(doc.pg);
  } catch (e) {
    if (e instanceof PgUrlError) throw new ConfigError(`pg: ${e.message}`);
    throw e;
  }
  return doc.pg;
}

export function parseConfig(doc: unknown, baseDir = process.cwd()): ServerConfig {
  if (doc === undefined || doc === null) doc = {};
  if (!isObj(doc)) throw new ConfigError('the configuration must be a YAML mapping');
  knownKeys(doc, 'config', ['server', 'store', 'profiles', 'groups', 'machines', 'flists', 'pg']);
  const server = section(doc, 'server', 'config', ['address', 'interfaces', 'dhcp', 'tftp', 'http', 'media', 'management', 'ipxeDir', 'stateDir']);
  const address = ipv4(server, 'address', 'server');
  const dhcpIn = section(server, 'dhcp', 'server', ['mode', 'port', 'proxyPort', 'pool', 'leasesFile', 'authoritative', 'thread']);
  const mode = str(dhcpIn, 'mode', 'server.dhcp', 'proxy');
  if (!(DHCP_MODES as readonly string[]).includes(mode)) throw new ConfigError(`server.dhcp.mode must be full, proxy or off, got "${mode}"`);
  let pool: PoolConfig | undefined;
  if (dhcpIn.pool !== undefined) {
    const p = section(dhcpIn, 'pool', 'server.dhcp', ['start', 'end', 'subnetMask', 'router', 'dns', 'domain', 'leaseSeconds']);
    pool = {
      start: ipv4(p, 'start', 'server.dhcp.pool'),
      end: ipv4(p, 'end', 'server.dhcp.pool'),
      subnetMask: ipv4(p, 'subnetMask', 'server.dhcp.pool', '255.255.255.0'),
      router: p.router === undefined ? undefined : ipv4(p, 'router', 'server.dhcp.pool'),
      dns: list(p, 'dns', 'server.dhcp.pool').map((d, i) => ipv4({ d }, 'd', `server.dhcp.pool.dns[${i}]`)),
      domain: p.domain === undefined ? undefined : str(p, 'domain', 'server.dhcp.pool'),
      leaseSeconds: num(p, 'leaseSeconds', 'server.dhcp.pool', 3600, 60, 365 * 86400),
    };
    if (ipToInt(pool.start) > ipToInt(pool.end)) throw new ConfigError('server.dhcp.pool.start must not be after pool.end');
  }
  if (mode === 'full' && !pool) throw new ConfigError('server.dhcp.pool is required when server.dhcp.mode is full');
  const tftpIn = section(server, 'tftp', 'server', ['enabled', 'port', 'maxTransfers', 'maxTransfersPerClient', 'maxWaiting', 'timeoutMs', 'retries', 'firstRetries']);
  const httpIn = section(server, 'http', 'server', ['port', 'host', 'publicUrl', 'maxConnections', 'maxConnectionsPerAddress', 'sendStallMs']);
  const resolve = (p: string) => (p.startsWith('/') ? p : `${baseDir}/${p}`);

  const profiles: Profile[] = entries(doc, 'profiles', ['name', 'kernel', 'initrd', 'args', 'cmdline', 'script', 'secureBoot']).map(({ raw, where }) => {
    const initrd = raw.initrd === undefined ? [] : Array.isArray(raw.initrd) ? raw.initrd.map(String) : [String(raw.initrd)];
    return {
      name: str(raw, 'name', where),
      kernel: str(raw, 'kernel', where),
      initrd,
      args: args(raw.args, `${where}.args`),
      cmdline: raw.cmdline === undefined ? undefined : str(raw, 'cmdline', where),
      script: raw.script === undefined ? undefined : str(raw, 'script', where),
      secureBoot: flag(raw, 'secureBoot', where),
    };
  });
  for (const [i, p] of profiles.entries()) {
    // shim finds its directory (and so grubx64.efi) in the BOOTP file field, which holds 127 bytes
    if (p.secureBoot && shimPath(p).length > 127) throw new ConfigError(`profiles[${i}]: with secureBoot the kernel's folder must be short enough for "${shimPath(p)}" to fit the 127-byte DHCP file field shim reads`);
  }
  const names = new Set<string>();
  for (const p of profiles) {
    if (names.has(p.name)) throw new ConfigError(`profile "${p.name}" is defined twice`);
    names.add(p.name);
  }
  const known = (name: string, where: string) => {
    if (!names.has(name)) throw new ConfigError(`${where}: profile "${name}" is not defined`);
    return name;
  };
  const groups: Group[] = entries(doc, 'groups', ['name', 'profile', 'selector', 'args']).map(({ raw, where, i }) => {
    return {
      name: str(raw, 'name', where, `group-${i}`),
      profile: known(str(raw, 'profile', where), `${where}.profile`),
      selector: labels(raw.selector, `${where}.selector`),
      args: args(raw.args, `${where}.args`),
    };
  });
  const machines: MachineOverride[] = entries(doc, 'machines', ['mac', 'profile', 'args', 'bootfile', 'hostname', 'ip']).map(({ raw, where }) => {
    return {
      mac: mac(raw, where),
      profile: raw.profile === undefined ? undefined : known(str(raw, 'profile', where), `${where}.profile`),
      args: args(raw.args, `${where}.args`),
      bootfile: raw.bootfile === undefined ? undefined : str(raw, 'bootfile', where),
      hostname: raw.hostname === undefined ? undefined : str(raw, 'hostname', where),
      ip: raw.ip === undefined ? undefined : ipv4(raw, 'ip', where),
    };
  });

  const config: ServerConfig = {
    interfaces: list(server, 'interfaces', 'server').map(String),
    address,
    dhcp: {
      mode: mode as DhcpMode,
      port: num(dhcpIn, 'port', 'server.dhcp', 67, 1, 65535),
      proxyPort: num(dhcpIn, 'proxyPort', 'server.dhcp', 4011, 1, 65535),
      pool,
      leasesFile: dhcpIn.leasesFile === undefined ? undefined : resolve(str(dhcpIn, 'leasesFile', 'server.dhcp')),
      authoritative: flag(dhcpIn, 'authoritative', 'server.dhcp') ?? false,
      thread: flag(dhcpIn, 'thread', 'server.dhcp') ?? true,
    },
    tftp: {
      enabled: tftpIn.enabled !== false,
      port: num(tftpIn, 'port', 'server.tftp', 69, 1, 65535),
      maxTransfers: num(tftpIn, 'maxTransfers', 'server.tftp', 64, 1, 10_000),
      maxTransfersPerClient: num(tftpIn, 'maxTransfersPerClient', 'server.tftp', 4, 1, 10_000),
      maxWaiting: num(tftpIn, 'maxWaiting', 'server.tftp', 1024, 0, 100_000),
      timeoutMs: num(tftpIn, 'timeoutMs', 'server.tftp', 1000, 10, 60_000),
      retries: num(tftpIn, 'retries', 'server.tftp', 5, 0, 100),
      firstRetries: num(tftpIn, 'firstRetries', 'server.tftp', 3, 0, 100),
    },
    http: {
      port: num(httpIn, 'port', 'server.http', 8080, 0, 65535),
      host: str(httpIn, 'host', 'server.http', address),
      publicUrl: httpIn.publicUrl === undefined ? undefined : str(httpIn, 'publicUrl', 'server.http'),
      // 0 turns a limit off; the defaults are the HTTP server's (boot/http/connection-limits.ts).
      maxConnections: num(httpIn, 'maxConnections', 'server.http', 1024, 0, 1_000_000),
      maxConnectionsPerAddress: num(httpIn, 'maxConnectionsPerAddress', 'server.http', 32, 0, 1_000_000),
      sendStallMs: num(httpIn, 'sendStallMs', 'server.http', 30_000, 0, 3_600_000),
    },
    media: media(server),
    management: management(server),
    ipxeDir: resolve(str(server, 'ipxeDir', 'server', '/usr/lib/ipxe')),
    mounts: entries(doc, 'store', ['prefix', 'dir']).map(({ raw, where }) => {
      return { prefix: str(raw, 'prefix', where, ''), dir: resolve(str(raw, 'dir', where)) };
    }),
    profiles,
    groups,
    machines,
    stateDir: resolve(str(server, 'stateDir', 'server', '/var/lib/zeroboot')),
    flists: flists(doc, resolve),
    pg: pgUrl(doc),
  };
  checkRanges(config);
  return config;
}

export async function loadConfig(file: string): Promise<ServerConfig> {
  const doc = await readYamlFile(file, configError);
  const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) || '/' : process.cwd();
  return parseConfig(doc, dir.startsWith('/') ? dir : `${process.cwd()}/${dir}`);
}
