// Composes the netboot server from its parts: one timeline, one selector and
// one store shared by DHCP, TFTP and HTTP. Policy lives in the selector and
// the classifier; the protocol servers only ask them.
import { join } from 'node:path';
import { MountedStore } from './store.ts';
import type { Mount } from './store.ts';
import { BootTimeline } from './timeline.ts';
import { GrubConfigStore } from './grub/store.ts';
import { watchGrub } from './grub/watch.ts';
import { MachineLabels } from './machine-labels.ts';
import { OPTIONAL_LOADER_FILES } from '../lib/loaders.ts';
import { createSelector } from './selection.ts';
import type { ServerConfig } from './config.ts';
import type { Logger } from './log.ts';
import { interfaceForAddress, interfaceMtu } from './netif/index.ts';
import { arpLookup } from './netif/arp.ts';
import { startDhcpServer } from './dhcp/index.ts';
import { startDhcpThread } from './dhcp/thread.ts';
import type { DhcpServer, DhcpSettings } from './dhcp/index.ts';
import { startTftpServer } from './tftp/index.ts';
import type { TftpServer } from './tftp/index.ts';
import { startHttpServer } from './http/index.ts';
import type { HttpServer } from './http/index.ts';
import { startManagementServer } from './http/management.ts';
import { ConsoleHub, CONSOLE_SOCKET } from './http/console-hub.ts';
import type { ManagementServer } from './http/management.ts';
import { MachineIndex } from './http/machine-index.ts';
import { loadApiToken } from './http/api-token.ts';
import type { ApiToken } from './http/api-token.ts';
import { LeasedAddresses } from './leased-addresses.ts';
import { ConfigError, managementNeedsToken } from './config.ts';
import type { FlistsConfig } from './config.ts';
import type { FlistOptions } from './http/index.ts';
import { openStore } from '../flist/stores/open.ts';
import { stat } from 'node:fs/promises';
import { Registry } from './registry/store.ts';
import { PgRegistry } from './state/pg-registry.ts';
import type { NodeRegistry } from './registry/node-registry.ts';
import { PgState } from './state/pg.ts';
import { PgMachines } from './state/pg-machines.ts';
import { TaskBoard } from './registry/tasks.ts';
import { PollHolds } from './registry/long-poll.ts';
import { TaskApi } from './registry/task-api.ts';
import { ServerMetrics } from './metrics/index.ts';
import { MEDIA_BUILDERS } from './http/bootstrap-builders.ts';

export interface BootServer {
  timeline: BootTimeline;
  /** Nodes that reported (POST /api/node/report), kept in <stateDir>/nodes.json, or in PostgreSQL when the config names `pg`. */
  registry: NodeRegistry;
  /** The shared state's connection when the config names `pg`. */
  shared?: PgState;
  /** Namespace tasks for nodes (management: POST /api/nodes/<id>/namespaces; nodes: POST /api/node/tasks), in memory. */
  tasks: TaskBoard;
  /** Counts for GET /metrics on the management port, in this server's own prom-client registry; none without that port. */
  metrics?: ServerMetrics;
  dhcp?: DhcpServer;
  tftp?: TftpServer;
  http: HttpServer;
  management?: ManagementServer;
  /** The management API's token, when it asks for one. */
  apiToken?: ApiToken;
  /** Where each part listens, for people and for `--json`. */
  endpoints: { http: string; api?: string; metrics?: string; apiTokenFile?: string; tftp?: string; dhcp?: string; interfaces: string[] };
  close(): Promise<void>;
}

export async function startBootServer(config: ServerConfig, log: Logger): Promise<BootServer> {
  const timeline = new BootTimeline();
  const selector = createSelector(config.profiles, config.groups, config.machines);
  const labels = new MachineLabels();
  // HTTP sees the iPXE binaries under ipxe/ (UEFI HTTP Boot fetches them there)
  // and every configured mount. TFTP sees the iPXE binaries at its root (the
  // names DHCP hands out) and the mounts too: the signed chain (shim, GRUB)
  // fetches the kernel and initrds over TFTP, with GRUB's configurations
  // rendered per machine on the way.
  const mounts: Mount[] = [{ prefix: 'ipxe', dir: config.ipxeDir, followSymlinks: true }, ...config.mounts];
  const httpStore = new MountedStore(mounts);
  let nodeHttpBase: string | undefined;
  const tftpStore = new GrubConfigStore({ inner: new MountedStore([{ prefix: '', dir: config.ipxeDir, followSymlinks: true }, ...config.mounts]), selector, labels, timeline, log, serverBase: () => nodeHttpBase });
  const interfaces = config.interfaces.length > 0 ? config.interfaces : [interfaceForAddress(config.address)].filter((x): x is string => !!x);

  const started: { close(): Promise<void> }[] = [];
  const closeAll = async () => {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
  };
  // Full mode knows which address each MAC holds, so labels are taken only from there. In proxy and
  // off modes another server leases the addresses, and a script request's labels are taken as they come.
  const leased = config.dhcp.mode === 'full' ? new LeasedAddresses() : undefined;
  if (leased) {
    const stop = timeline.subscribe((e) => leased.observe(e));
    started.push({ close: async () => stop() });
  }
  try {
    // Before anything listens: a token file in a bad state stops the start with nothing half-up.
    const apiToken = config.management.enabled && managementNeedsToken(config.management) ? await loadApiToken(config.stateDir) : undefined;
    let dhcp: DhcpServer | undefined;
    const flists = config.flists && (await openFlists(config.flists));
    // Closed after HTTP (started closes in reverse), which may still be reading from it.
    if (flists) started.push(flists.chunks);
    // Shared state first (closed last): an unreachable database stops the start with nothing listening.
    const shared = config.pg ? await PgState.open(config.pg) : undefined;
    if (shared) {
      started.push(shared);
      log.info('shared state in PostgreSQL', { at: shared.where });
    }
    // Opened before anything listens (a broken nodes.json stops the start); closed after HTTP, which writes to it.
    const registry: NodeRegistry = shared ? await PgRegistry.open(shared, { log }) : await Registry.open(config.stateDir);
    started.push(registry);
    // Only where someone can read them: counting costs the DHCP path a little per packet.
    const metrics = config.management.enabled ? new ServerMetrics({ timeline, nodes: registry }) : undefined;
    if (metrics) started.push({ close: async () => metrics.close() });
    const tasks = new TaskBoard();
    const holds = new PollHolds(tasks);
    const http = await startHttpServer({
      store: httpStore,
      selector,
      labels,
      timeline,
      log,
      host: config.http.host,
      port: config.http.port,
      publicUrl: config.http.publicUrl,
      acceptLabels: leased && ((mac, ip) => leased.ipOf(mac) === ip),
      limits: { maxConnections: config.http.maxConnections, maxPerAddress: config.http.maxConnectionsPerAddress, sendStallMs: config.http.sendStallMs },
      flists,
      registry,
      tasks: { board: tasks, holds },
      metrics,
      bootstrap: {
        profiles: config.profiles,
        builders: MEDIA_BUILDERS,
        // Under the state directory (not the system's temporary folder): its own, so a crashed run's leftovers are swept at start.
        cacheParent: join(config.stateDir, 'media'),
        sweepCache: true,
        maxCacheBytes: config.media.maxCacheBytes,
        maxBuilds: config.media.maxBuilds,
        maxQueuedBuilds: config.media.maxQueuedBuilds,
        maxMediaPerAddress: config.media.maxPerAddress,
        buildTimeoutMs: config.media.buildTimeoutMs,
      },
    });
    started.push(http);
    nodeHttpBase = nodeBase(config, http.port);
    // Closed before HTTP: held polls are answered (empty) rather than cut.
    started.push({ close: async () => holds.close() });
    // Each machine's stage, shared with the other servers; named by the base nodes reach this one at.
    const peers = shared ? await PgMachines.open(shared, { timeline, server: nodeHttpBase, log }) : undefined;
    if (peers) started.push(peers);
    let management: ManagementServer | undefined;
    if (config.management.enabled) {
      // Rig VMs' consoles, published by whatever process runs the rig (console-hub.ts).
      const hub = new ConsoleHub({ scrollbackBytes: config.management.console.scrollbackBytes, maxSessions: 64, log });
      // Optional: without its socket (a state directory path too long for one) the server runs, without consoles.
      await hub.listen(join(config.stateDir, CONSOLE_SOCKET)).catch((e: NodeJS.ErrnoException) => log.warn('no console socket: rig VM consoles will not show in the dashboard', { error: e.message }));
      started.push(hub);
      const leases = () => dhcp?.eachLease() ?? [];
      const index = new MachineIndex({ timeline, leases, labelsFor: (m) => labels.get(m), peers });
      started.push({ close: async () => index.close() });
      management = await startManagementServer({
        api: {
          timeline, selector, index, labelsFor: (m) => labels.get(m), startedAt: new Date(), nodes: registry, tasks: new TaskApi(tasks, registry),
          reportedAt: (m) => {
            const bound = registry?.bindingOf(m);
            return bound && registry?.get(bound.nodeId)?.lastSeen;
          },
          nodeIdOf: (m) => registry?.bindingOf(m)?.nodeId,
          consoleTail: (m) => hub.byMac(m)?.tail(),
        },
        host: config.management.host,
        port: config.management.port,
        token: apiToken?.token,
        metrics,
        consoles: { hub, maxClients: config.management.console.maxClients, maxUnreadBytes: Math.max(1 << 20, 2 * config.management.console.scrollbackBytes), input: config.management.console.input },
        log,
      });
      started.push(management);
    }
    let tftp: TftpServer | undefined;
    if (config.tftp.enabled) {
      tftp = await startTftpServer({
        store: tftpStore,
        address: config.address,
        port: config.tftp.port,
        mtu: interfaces[0] ? interfaceMtu(interfaces[0]) : undefined,
        maxTransfers: config.tftp.maxTransfers,
        maxTransfersPerClient: config.tftp.maxTransfersPerClient,
        maxWaiting: config.tftp.maxWaiting,
        timeoutMs: config.tftp.timeoutMs,
        retries: config.tftp.retries,
        firstRetries: config.tftp.firstRetries,
        timeline,
        log,
        optionalFiles: OPTIONAL_LOADER_FILES,
        // Our lease first (a map lookup: listing 10k leases per request took up to 85 ms); in proxy mode another server leased it, so ask ARP.
        macForIp: (ip) => leased?.macOf(ip) ?? arpLookup(ip),
      });
      started.push(tftp);
    }
    // a machine that got GRUB from us but asks someone else for its configuration gets a timeline entry saying so
    if (tftp) {
      const stopWatch = watchGrub({ timeline, address: config.address, proxyMode: config.dhcp.mode === 'proxy' });
      started.push({ close: async () => stopWatch() });
    }
    if (config.dhcp.mode !== 'off') {
      // The HTTP port may have been ephemeral: hand DHCP the real one.
      const settings = dhcpSettings(config, interfaces, http.port);
      dhcp = config.dhcp.thread
        ? await startDhcpThread({ config: { settings, selection: selectionOf(config) }, labels, timeline, log })
        : await startDhcpServer({ settings, selector, labels, timeline, log });
      started.push(dhcp);
      leased?.seed(dhcp.leases());
    }
    return {
      timeline,
      registry,
      shared,
      tasks,
      metrics,
      dhcp,
      tftp,
      http,
      management,
      apiToken,
      endpoints: {
        http: http.url,
        api: management?.url,
        metrics: management?.url.replace(/\/api$/, '/metrics'),
        apiTokenFile: apiToken?.file,
        tftp: tftp ? `${config.address}:${tftp.port}` : undefined,
        dhcp: dhcp ? `${config.dhcp.mode} on ${interfaces.join(',')}:${config.dhcp.port}` : undefined,
        interfaces,
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** The flists folder checked and the chunk store opened (lazily: no I/O until the first chunk); refusals name the key. */
async function openFlists(f: FlistsConfig): Promise<FlistOptions> {
  const st = await stat(f.dir).catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(`flists.dir: ${f.dir} cannot be read (${e.code ?? e.message})`);
  });
  if (!st.isDirectory()) throw new ConfigError(`flists.dir: ${f.dir} is not a folder`);
  try {
    return { dir: f.dir, chunks: openStore(f.store) };
  } catch (e) {
    throw new ConfigError(`flists.store: ${(e as Error).message}`);
  }
}

/** The DHCP server's own options, from the configuration; `httpPort` is the port HTTP really listens on. */
export function dhcpSettings(config: ServerConfig, interfaces: string[], httpPort: number): DhcpSettings {
  const d = config.dhcp;
  return {
    mode: d.mode,
    address: config.address,
    interfaces,
    port: d.port,
    proxyPort: d.proxyPort,
    authoritative: d.authoritative,
    pool: d.mode === 'full' ? d.pool : undefined,
    leasesFile: d.leasesFile ?? join(config.stateDir, 'dhcp-leases.json'),
    pg: config.pg,
    reservations: config.machines.filter((m) => m.ip).map((m) => [m.mac, m.ip!]),
    httpBase: nodeBase(config, httpPort),
  };
}

/** What the DHCP thread re-creates its selector from (plain data: nothing else crosses a thread). */
export function selectionOf(config: ServerConfig): { profiles: ServerConfig['profiles']; groups: ServerConfig['groups']; machines: ServerConfig['machines'] } {
  return { profiles: config.profiles, groups: config.groups, machines: config.machines };
}

/** The HTTP base nodes reach this server at (DHCP's iPXE URL, GRUB's zeroboot.server); `httpPort` is the real port. */
function nodeBase(config: ServerConfig, httpPort: number): string {
  return (config.http.publicUrl ?? `http://${config.address}:${httpPort}`).replace(/\/+$/, '');
}
