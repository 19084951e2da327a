// The DHCP server of `zeroboot serve`: sockets and message handling. One
// socket per configured interface on :67 (and :4011 for PXE boot-server
// discovery), each pinned to its interface with SO_BINDTODEVICE so a
// multi-homed host never answers on a network it was not given. Decoding,
// classification and the address pool are pure modules; this file turns
// their answers into packets and timeline events, and never lets a packet
// stop it.
import dgram from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { ServerConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { NoProfileError } from '../selection.ts';
import type { Selector } from '../selection.ts';
import type { MachineLabels } from '../machine-labels.ts';
import { shimPath } from '../../lib/loaders.ts';
import type { BootEventKind, BootTimeline } from '../timeline.ts';
import { macFromBytes } from '../../lib/mac.ts';
import { bindSocketToDevice, interfaceForAddress, interfaceInfo, InterfaceError } from '../netif/index.ts';
import { decodeDhcp, DhcpDecodeError, encodeDhcp, MessageType, messageType } from './codec.ts';
import type { DhcpPacket } from './codec.ts';
import {
  encodeIp,
  encodeIps,
  encodePxeVendorOptions,
  encodeString,
  encodeU32,
  Opt,
  optEncapsulated,
  optIp,
  optString,
  optU16,
  PxeSubOpt,
} from './options.ts';
import { ARCH, classify, clientFacts, isIpxe } from './classifier.ts';
import type { BootDecision, ClientFacts } from './classifier.ts';
import { LeasePool, LeasePoolError } from './leases.ts';
import type { ClientRef, LeaseInfo, LeaseRecord, RequestKind } from './leases.ts';
import { LeaseFile, LeaseFileError } from './lease-file.ts';

export class DhcpServerError extends Error {}

export interface DhcpServerOptions {
  config: ServerConfig;
  selector: Selector;
  /** Labels learned per MAC, shared with TFTP/GRUB and HTTP: DHCP adds the UUID and the architecture. */
  labels: MachineLabels;
  timeline: BootTimeline;
  log: Logger;
}

export interface DhcpServer {
  close(): Promise<void>;
  leases(): LeaseInfo[];
  /** The same, one at a time (LeasePool.each), for callers that list in slices. */
  eachLease(): Iterable<LeaseInfo>;
}

const CLIENT_PORT = 68;
const SERVER_PORT = 67;
const ZERO = '0.0.0.0';
const BROADCAST = '255.255.255.255';
const MAX_HOPS = 16;

interface Iface {
  name: string;
  /** Our address on this network: option 54 and siaddr. */
  address: string;
  mtu: number;
  /** Full mode: the pool's subnet is this interface's network. */
  servesPool: boolean;
  /** Option 54 and 66 values, encoded once. */
  serverIdOpt: Buffer;
  tftpServerOpt: Buffer;
}

interface Ctx {
  iface: Iface;
  rinfo: RemoteInfo;
  /** Arrived on the PXE boot-server port (4011). */
  proxyPort: boolean;
}

interface Reply {
  type: number;
  yiaddr?: string;
  leaseSeconds?: number;
  decision?: BootDecision;
  message?: string;
  hostname?: string;
  /** 4011 answers carry the PXE boot item the client asked for. */
  bootItem?: { type: number; layer: number };
}

const KIND: Record<number, BootEventKind> = {
  [MessageType.DISCOVER]: 'dhcp.discover',
  [MessageType.REQUEST]: 'dhcp.request',
  [MessageType.DECLINE]: 'dhcp.decline',
  [MessageType.RELEASE]: 'dhcp.release',
  [MessageType.INFORM]: 'dhcp.inform',
};

const TYPE_NAME: Record<number, string> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};

/** Interfaces to serve: the configured ones, else the one carrying the server address. */
function resolveInterfaces(config: ServerConfig): Iface[] {
  let names = config.interfaces;
  if (names.length === 0) {
    const name = interfaceForAddress(config.address);
    if (!name) {
      throw new DhcpServerError(`server.address ${config.address} is not on any interface of this host; set server.interfaces or fix server.address`);
    }
    names = [name];
  }
  return names.map((name) => {
    let info;
    try {
      info = interfaceInfo(name);
    } catch (e) {
      if (e instanceof InterfaceError) throw new DhcpServerError(`${e.message}: check server.interfaces (ip -br addr shows the host's interfaces)`);
      throw e;
    }
    const own = (networkInterfaces()[name] ?? []).some((a) => a.family === 'IPv4' && a.address === config.address);
    const address = own ? config.address : info.address;
    return { name, address, mtu: info.mtu, servesPool: false, serverIdOpt: encodeIp(address), tftpServerOpt: encodeString(address) };
  });
}

function bindError(e: NodeJS.ErrnoException, port: number, ifname: string): DhcpServerError {
  if (e.code === 'EADDRINUSE') return new DhcpServerError(`UDP port ${port} on ${ifname} is in use by a socket without SO_REUSEADDR; stop the other DHCP server or use server.dhcp.mode: off`);
  if (e.code === 'EACCES') return new DhcpServerError(`no permission to bind UDP port ${port}; run as root or grant CAP_NET_BIND_SERVICE`);
  return new DhcpServerError(`cannot open UDP port ${port} on ${ifname}: ${e.message}`);
}

async function openSocket(port: number, iface: Iface): Promise<Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      // The failed bind still created the socket's file descriptor.
      socket.close();
      reject(bindError(e as NodeJS.ErrnoException, port, iface.name));
    };
    socket.once('error', onError);
    socket.bind(port, ZERO, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  try {
    bindSocketToDevice(socket, iface.name);
    socket.setBroadcast(true);
  } catch (e) {
    socket.close();
    if (e instanceof InterfaceError) throw new DhcpServerError(e.message);
    throw e;
  }
  // Bursts (perfdhcp, a rack powering on) outrun the default receive buffer.
  try {
    socket.setRecvBufferSize(4 * 1024 * 1024);
  } catch {
    // The kernel caps it at net.core.rmem_max; the default still works.
  }
  return socket;
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const { config, selector, timeline, log } = opts;
  const authoritative = config.dhcp.authoritative;
  const machineLabels = opts.labels;
  if (config.dhcp.mode === 'off') {
    log.info('dhcp: off');
    return { close: async () => {}, leases: () => [], eachLease: () => [] };
  }
  const ifaces = resolveInterfaces(config);
  const ourIds = new Set([config.address, ...ifaces.map((i) => i.address)]);
  const httpBase = (config.http.publicUrl ?? `http://${config.address}:${config.http.port}`).replace(/\/+$/, '');
  const networkOpts = networkOptions(config);
  const pxeDiscoveryOpt = encodePxeVendorOptions({ discoveryControl: 8 });
  // Declared before any socket exists: packets may arrive while later sockets are still opening.
  // closing: no new packets, but ACKs whose leases are being written still go out; closed: sockets gone.
  let closing = false;
  let closed = false;

  let pool: LeasePool | undefined;
  let leaseFile: LeaseFile | undefined;
  if (config.dhcp.mode === 'full') {
    const pc = config.dhcp.pool;
    if (!pc) throw new DhcpServerError('server.dhcp.pool is required in full mode');
    const exclude = [...ourIds];
    if (pc.router) exclude.push(pc.router);
    try {
      pool = new LeasePool({
        start: pc.start,
        end: pc.end,
        subnetMask: pc.subnetMask,
        leaseSeconds: pc.leaseSeconds,
        exclude,
        reservations: config.machines.filter((m) => m.ip).map((m) => [m.mac, m.ip!] as [string, string]),
      });
    } catch (e) {
      if (e instanceof LeasePoolError) throw new DhcpServerError(`server.dhcp.pool: ${e.message}`);
      throw e;
    }
    for (const i of ifaces) i.servesPool = pool.inSubnet(i.address);
    if (!ifaces.some((i) => i.servesPool)) {
      log.warn('dhcp: no served interface is in the pool subnet; only relayed requests will get addresses', {
        pool: `${pc.start}-${pc.end}`,
        interfaces: ifaces.map((i) => `${i.name}=${i.address}`).join(','),
      });
    }
    const path = config.dhcp.leasesFile ?? join(config.stateDir, 'dhcp-leases.json');
    try {
      const loaded = await LeaseFile.load(path);
      const dropped = pool.restore(loaded.records);
      if (loaded.skipped || dropped) log.warn('dhcp: some stored leases were not restored', { file: path, unreadable: loaded.skipped, outsideSubnet: dropped });
      const p = pool;
      leaseFile = await LeaseFile.open(path, () => p.records());
    } catch (e) {
      if (e instanceof LeaseFileError) throw new DhcpServerError(e.message);
      throw e;
    }
  }

  const sockets: Socket[] = [];
  const closeSockets = () => {
    for (const s of sockets) s.close();
  };
  try {
    for (const iface of ifaces) {
      for (const [port, proxyPort] of [[config.dhcp.port, false], [config.dhcp.proxyPort, true]] as const) {
        const socket = await openSocket(port, iface);
        sockets.push(socket);
        socket.on('message', (buf, rinfo) => handle(socket, buf, { iface, rinfo, proxyPort }));
        socket.on('error', (e) => log.warn('dhcp: socket error', { iface: iface.name, port, error: e.message }));
      }
    }
  } catch (e) {
    closeSockets();
    await leaseFile?.close();
    throw e;
  }

  const sweep = pool ? setInterval(() => pool!.sweep(), 30_000) : undefined;
  sweep?.unref();
  log.info('dhcp: listening', {
    mode: config.dhcp.mode,
    interfaces: ifaces.map((i) => `${i.name}=${i.address}`).join(','),
    port: config.dhcp.port,
    proxyPort: config.dhcp.proxyPort,
  });

  function ignore(mac: string, reason: string, detail?: Record<string, string | number | boolean>): void {
    // MACs with no timeline yet (junk, floods) are only counted per reason.
    timeline.recordIgnored(mac, 'dhcp.ignored', reason, detail);
    log.debug('dhcp: ignored', { mac, reason });
  }

  function handle(socket: Socket, buf: Buffer, ctx: Ctx): void {
    if (closing) return;
    let p: DhcpPacket;
    try {
      p = decodeDhcp(buf);
    } catch (e) {
      if (!(e instanceof DhcpDecodeError)) throw e;
      // The chaddr may still be readable from a damaged packet: it names the timeline.
      const mac = buf.length >= 34 && buf[1] === 1 && buf[2] === 6 ? macFromBytes(buf.subarray(28, 34)) : 'unknown';
      ignore(mac, `malformed packet: ${e.message}`, { from: `${ctx.rinfo.address}:${ctx.rinfo.port}`, bytes: buf.length, iface: ctx.iface.name });
      return;
    }
    const mac = p.htype === 1 && p.hlen === 6 ? macFromBytes(p.chaddr) : 'unknown';
    try {
      dispatch(socket, p, mac, ctx);
    } catch (e) {
      // A bug must cost one packet, not the server.
      log.error('dhcp: failed to handle a packet', { mac, error: (e as Error).stack ?? String(e) });
      ignore(mac, `internal error: ${(e as Error).message}`);
    }
  }

  /** Shim's TFTP path when this UEFI x64 PXE client's profile boots the signed chain; selection runs only for those clients. */
  function signedChainShim(mac: string, facts: ClientFacts): string | undefined {
    if (isIpxe(facts) || (facts.arch !== ARCH.EFI_BC && facts.arch !== ARCH.EFI_X64)) return undefined;
    // GRUB's configuration is selected later from the same labels (MachineLabels), so both pick one profile.
    machineLabels.note(mac, { arch: 'x86_64' });
    try {
      const { profile } = selector.select({ ...machineLabels.get(mac), mac });
      return profile.secureBoot ? shimPath(profile) : undefined;
    } catch (e) {
      if (e instanceof NoProfileError) return undefined;
      throw e;
    }
  }

  function dispatch(socket: Socket, p: DhcpPacket, mac: string, ctx: Ctx): void {
    if (p.op !== 1) return ignore(mac, 'not a BOOTREQUEST (op != 1): a server reply reached the server port', { iface: ctx.iface.name });
    if (p.htype !== 1 || p.hlen !== 6) return ignore(mac, `hardware type ${p.htype} length ${p.hlen}: only Ethernet is served`);
    if (p.hops > MAX_HOPS) return ignore(mac, `relayed ${p.hops} times (over ${MAX_HOPS}): a relay loop`);
    const type = messageType(p);
    if (type === undefined) return ignore(mac, 'no DHCP message type (option 53): plain BOOTP is not served');
    const facts = clientFacts(p);
    if (facts.uuid) machineLabels.note(mac, { uuid: facts.uuid });
    const machine = selector.machine(mac);
    const decision = classify(facts, { httpBase, override: machine?.bootfile, shim: signedChainShim(mac, facts) });
    const kind = KIND[type];
    if (!kind) {
      if (TYPE_NAME[type]) return ignore(mac, `a DHCP ${TYPE_NAME[type]} is a server message; another DHCP server may be answering at ${ctx.rinfo.address}`);
      return ignore(mac, `DHCP message type ${type} is not one a client sends to a server`);
    }
    timeline.record(mac, kind, describeClient(p, facts, decision, ctx));

    if (ctx.proxyPort) return bootServer(socket, p, mac, type, decision, ctx);
    if (p.giaddr !== ZERO && pool && !pool.inSubnet(p.giaddr)) return ignore(mac, `relay ${p.giaddr} is not in the pool subnet; no addresses for that network`);
    if (config.dhcp.mode === 'proxy') return proxy(socket, p, mac, type, decision, ctx);
    return full(socket, p, mac, type, decision, ctx, machine?.hostname);
  }

  function full(socket: Socket, p: DhcpPacket, mac: string, type: number, decision: BootDecision, ctx: Ctx, hostname?: string): void {
    const pl = pool!;
    if (p.giaddr === ZERO && !ctx.iface.servesPool) return ignore(mac, `interface ${ctx.iface.name} (${ctx.iface.address}) is not in the pool subnet`);
    if (decision.refused) log.info('dhcp: network-boot client gets an address but no boot file', { mac, reason: decision.refused });
    const client = clientRef(p, mac);
    switch (type) {
      case MessageType.DISCOVER: {
        const grant = pl.offer(client, optIp(p, Opt.REQUESTED_IP));
        if (!grant.ok) return ignore(mac, grant.reason);
        return send(socket, p, mac, ctx, { type: MessageType.OFFER, yiaddr: grant.ip, leaseSeconds: leaseSeconds(grant.expires), decision, hostname });
      }
      case MessageType.REQUEST: {
        const serverId = optIp(p, Opt.SERVER_ID);
        const requested = optIp(p, Opt.REQUESTED_IP);
        if (serverId !== undefined && !ourIds.has(serverId)) {
          if (authoritative) return send(socket, p, mac, ctx, { type: MessageType.NAK, message: `server ${serverId} is not authoritative here` });
          // RFC 2131 4.3.2: the client declined our offer by choosing another server's.
          pl.withdraw(client);
          return ignore(mac, `REQUEST for server ${serverId}: the client chose another server's offer`);
        }
        let ip: string;
        let how: RequestKind;
        if (serverId !== undefined) {
          if (!requested) return ignore(mac, 'REQUEST names our server but no requested address (option 50)');
          [ip, how] = [requested, 'selecting'];
        } else if (requested) {
          [ip, how] = [requested, 'init-reboot'];
        } else if (p.ciaddr !== ZERO) {
          [ip, how] = [p.ciaddr, 'renewing'];
        } else {
          return ignore(mac, 'REQUEST names no address (no option 50, no ciaddr)');
        }
        if (how !== 'selecting') {
          // RFC 2131 4.3.2: a server with no record of the client stays silent (a MUST, for servers sharing a
          // wire, as ISC's non-authoritative mode does, even for an address on another network); a client we
          // know, or any client when we are authoritative, gets a NAK for the wrong network.
          if (!authoritative && !pl.knows(client)) {
            return ignore(mac, `REQUEST (${how}) for ${ip} from a client this server has no record of: left to the server that leased it (dhcp.authoritative: true answers it)`);
          }
          if (!pl.inSubnet(ip)) return send(socket, p, mac, ctx, { type: MessageType.NAK, message: `${ip} is not on this network` });
        }
        const grant = pl.request(client, ip, how, hostname ?? optString(p, Opt.HOSTNAME));
        if (!grant.ok) return send(socket, p, mac, ctx, { type: MessageType.NAK, message: grant.reason });
        const reply: Reply = { type: MessageType.ACK, yiaddr: grant.ip, leaseSeconds: leaseSeconds(grant.expires), decision, hostname };
        // The ACK leaves only once its lease is on disk.
        persist(grant.record!).then(
          () => {
            if (closed) return;
            try {
              send(socket, p, mac, ctx, reply);
            } catch (e) {
              log.error('dhcp: failed to send an ACK', { mac, error: (e as Error).message });
            }
          },
          (e: Error) => ignore(mac, `lease not stored, ACK withheld: ${e.message}`),
        );
        return;
      }
      case MessageType.DECLINE: {
        const ip = optIp(p, Opt.REQUESTED_IP);
        const record = ip ? pl.decline(client, ip) : undefined;
        if (!record) return ignore(mac, `DECLINE for ${ip ?? 'no address'}, which this client does not hold`);
        log.warn('dhcp: client declined an address (in use on the network?)', { mac, ip });
        persist(record).catch((e: Error) => log.error('dhcp: cannot store a decline', { error: e.message }));
        return;
      }
      case MessageType.RELEASE: {
        const record = pl.release(client, p.ciaddr);
        if (!record) return ignore(mac, `RELEASE for ${p.ciaddr}, which this client does not hold`);
        persist(record).catch((e: Error) => log.error('dhcp: cannot store a release', { error: e.message }));
        return;
      }
      case MessageType.INFORM:
        if (p.ciaddr === ZERO) return ignore(mac, 'INFORM without ciaddr');
        return send(socket, p, mac, ctx, { type: MessageType.ACK, decision, hostname });
    }
  }

  function proxy(socket: Socket, p: DhcpPacket, mac: string, type: number, decision: BootDecision, ctx: Ctx): void {
    if (!decision.netboot) return ignore(mac, 'not a network-boot client (no PXEClient/HTTPClient/iPXE): proxy mode leaves it to the address server');
    if (!decision.bootfile) return ignore(mac, decision.refused ?? 'no boot file for this client');
    if (type === MessageType.DISCOVER) return send(socket, p, mac, ctx, { type: MessageType.OFFER, decision });
    // An ACK from us without an address could beat the address server's and confuse the client;
    // PXE clients that want more from a proxy ask on the boot-server port.
    return ignore(mac, `proxy mode: a ${TYPE_NAME[type]} on port ${config.dhcp.port} is for the address server`);
  }

  /** The PXE boot-server exchange on :4011: the client has an address and asks for its boot file. */
  function bootServer(socket: Socket, p: DhcpPacket, mac: string, type: number, decision: BootDecision, ctx: Ctx): void {
    if (type !== MessageType.REQUEST && type !== MessageType.INFORM) return ignore(mac, `a ${TYPE_NAME[type]} on the boot-server port ${config.dhcp.proxyPort}`);
    if (!decision.netboot) return ignore(mac, 'not a network-boot client on the boot-server port');
    if (!decision.bootfile) return ignore(mac, decision.refused ?? 'no boot file for this client');
    const item = optEncapsulated(p, Opt.VENDOR_SPECIFIC)?.get(PxeSubOpt.BOOT_ITEM);
    const bootItem = item && item.length === 4 ? { type: item.readUInt16BE(0), layer: item.readUInt16BE(2) } : undefined;
    return send(socket, p, mac, ctx, { type: MessageType.ACK, decision, bootItem });
  }

  function leaseSeconds(expires: number): number {
    return Math.max(0, Math.round((expires - Date.now()) / 1000));
  }

  function persist(record: LeaseRecord): Promise<void> {
    return leaseFile ? leaseFile.append(record) : Promise.resolve();
  }

  function send(socket: Socket, req: DhcpPacket, mac: string, ctx: Ctx, r: Reply): void {
    const d = r.decision;
    const nak = r.type === MessageType.NAK;
    const options = new Map<number, Buffer>();
    options.set(Opt.MESSAGE_TYPE, Buffer.from([r.type]));
    options.set(Opt.SERVER_ID, ctx.iface.serverIdOpt);
    if (nak) {
      if (r.message) options.set(Opt.MESSAGE, encodeString(r.message));
    } else {
      if (r.leaseSeconds !== undefined) {
        options.set(Opt.LEASE_TIME, encodeU32(r.leaseSeconds));
        options.set(Opt.RENEWAL, encodeU32(Math.floor(r.leaseSeconds / 2)));
        options.set(Opt.REBINDING, encodeU32(Math.floor((r.leaseSeconds * 7) / 8)));
      }
      // Network settings go with an address (and to INFORM, which has one).
      if (r.yiaddr || r.type === MessageType.ACK) for (const [code, v] of networkOpts) options.set(code, v);
      if (r.hostname) options.set(Opt.HOSTNAME, encodeString(r.hostname));
      if (d?.bootfile) {
        if (d.transport === 'tftp') options.set(Opt.TFTP_SERVER, ctx.iface.tftpServerOpt);
        options.set(Opt.BOOTFILE, encodeString(d.bootfile));
      }
      if (d?.echoVendor) options.set(Opt.VENDOR_CLASS, encodeString(d.echoVendor));
      const uuid = req.options.get(Opt.CLIENT_UUID);
      if (uuid && d?.netboot) options.set(Opt.CLIENT_UUID, uuid);
      if (d?.bootfile && r.bootItem) options.set(Opt.VENDOR_SPECIFIC, encodePxeVendorOptions({ bootItem: r.bootItem }));
      else if (d?.bootfile && d.pxeOptions) options.set(Opt.VENDOR_SPECIFIC, pxeDiscoveryOpt);
    }
    // RFC 6842: the client identifier goes back in every reply, so a client can tell its answers apart.
    const clientId = req.options.get(Opt.CLIENT_ID);
    if (clientId) options.set(Opt.CLIENT_ID, clientId);
    // RFC 3046 2.2: relay agent information goes back unchanged in every reply; relays
    // and snooping switches that added it route the reply by it (and may drop one without).
    const agentInfo = req.options.get(Opt.RELAY_AGENT);
    if (agentInfo) options.set(Opt.RELAY_AGENT, agentInfo);
    const bootfile = !nak && d?.bootfile ? d.bootfile : '';
    const relayed = req.giaddr !== ZERO;
    const reply: DhcpPacket = {
      op: 2,
      htype: req.htype,
      hlen: req.hlen,
      hops: 0,
      xid: req.xid,
      secs: 0,
      // A relay broadcasts a NAK on the client's segment: the client may still think it has an address.
      flags: nak && relayed ? req.flags | 0x8000 : req.flags,
      ciaddr: nak || r.type === MessageType.OFFER ? ZERO : req.ciaddr,
      yiaddr: r.yiaddr ?? ZERO,
      siaddr: nak ? ZERO : ctx.iface.address,
      giaddr: req.giaddr,
      chaddr: req.chaddr,
      sname: '',
      // The BOOTP field holds 127 characters; a longer URL travels in option 67 only.
      file: bootfile.length < 128 ? bootfile : '',
      options,
    };
    const clientMax = optU16(req, Opt.MAX_SIZE) ?? 576;
    let out: Buffer;
    try {
      out = encodeDhcp(reply, { maxSize: Math.min(clientMax, ctx.iface.mtu - 28) });
    } catch (e) {
      return ignore(mac, `reply does not fit: ${(e as Error).message}`);
    }
    let host: string;
    let port: number;
    if (relayed) [host, port] = [req.giaddr, SERVER_PORT];
    else if (ctx.proxyPort) [host, port] = [ctx.rinfo.address, ctx.rinfo.port];
    else if (!nak && req.ciaddr !== ZERO) [host, port] = [req.ciaddr, CLIENT_PORT];
    // Without an address the client cannot answer ARP, so it hears us by broadcast whatever its flag says.
    else [host, port] = [BROADCAST, CLIENT_PORT];
    // Send errors surface as the socket's 'error' event (logged there).
    socket.send(out, port, host);
    const detail: Record<string, string | number | boolean> = { to: `${host}:${port}`, iface: ctx.iface.name };
    if (r.yiaddr) detail.ip = r.yiaddr;
    if (d?.bootfile && !nak) detail.bootfile = d.bootfile;
    if (d) detail.class = d.rule;
    if (d?.refused) detail.refused = d.refused;
    timeline.record(mac, r.type === MessageType.OFFER ? 'dhcp.offer' : nak ? 'dhcp.nak' : 'dhcp.ack', detail, nak ? r.message : undefined);
  }

  return {
    leases: () => pool?.list() ?? [],
    eachLease: () => pool?.each() ?? [],
    async close() {
      if (closing) return;
      closing = true;
      if (sweep) clearInterval(sweep);
      try {
        await leaseFile?.close();
      } finally {
        closed = true;
        closeSockets();
      }
    },
  };
}

/** The lease's client: option 61 when sent (RFC 2132 gives it at least 2 bytes: type and id), else the MAC. */
function clientRef(p: DhcpPacket, mac: string): ClientRef {
  const id = p.options.get(Opt.CLIENT_ID);
  return id && id.length >= 2 ? { mac, clientId: id.toString('hex') } : { mac };
}

/** Subnet mask, router, DNS and domain from the pool (full mode only: proxy hands out no network settings). */
function networkOptions(config: ServerConfig): [number, Buffer][] {
  const pc = config.dhcp.pool;
  if (!pc || config.dhcp.mode !== 'full') return [];
  const out: [number, Buffer][] = [[Opt.SUBNET_MASK, encodeIp(pc.subnetMask)]];
  if (pc.router) out.push([Opt.ROUTER, encodeIp(pc.router)]);
  if (pc.dns.length) out.push([Opt.DNS, encodeIps(pc.dns)]);
  if (pc.domain) out.push([Opt.DOMAIN, encodeString(pc.domain)]);
  return out;
}

function describeClient(p: DhcpPacket, f: ClientFacts, d: BootDecision, ctx: Ctx): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { iface: ctx.iface.name, xid: p.xid.toString(16), class: d.rule };
  if (ctx.proxyPort) out.bootServer = true;
  if (f.arch !== undefined) out.arch = f.arch;
  if (f.vendorClass) out.vendorClass = f.vendorClass;
  if (f.userClass.length) out.userClass = f.userClass.join(',');
  if (isIpxe(f)) out.ipxe = true;
  if (f.uuid) out.uuid = f.uuid;
  if (p.giaddr !== ZERO) out.relay = p.giaddr;
  if (p.ciaddr !== ZERO) out.ciaddr = p.ciaddr;
  return out;
}
