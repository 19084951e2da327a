// The DHCP server of `zeroboot serve`: the socket side only. One socket per
// interface on :67 and on :4011 (PXE boot-server discovery); each packet is
// decoded, screened (request.ts), classified, handed to its handler (full.ts,
// proxy.ts, boot-server.ts), built into a reply (reply.ts) and sent, with
// timeline events on the way. With the dhcpio addon, datagrams are read
// (batch-receiver.ts) and replies sent (reply-sender.ts) in batches. A
// packet never stops the server.
import type { RemoteInfo } from 'node:dgram';
import type { Logger } from '../log.ts';
import { NoProfileError } from '../selection.ts';
import type { Selector } from '../selection.ts';
import type { MachineLabels } from '../machine-labels.ts';
import { shimPath } from '../../lib/loaders.ts';
import type { BootEventKind, EventDetail } from '../timeline.ts';
import { decodeDhcp, DhcpDecodeError, MessageType } from './codec.ts';
import type { DhcpPacket } from './codec.ts';
import { ARCH, classify, clientFacts, isIpxe } from './classifier.ts';
import type { ClientFacts } from './classifier.ts';
import type { LeaseInfo, LeaseRecord } from './leases.ts';
import type { LeaseFile } from './lease-file.ts';
import { openLeases } from './lease-store.ts';
import type { DhcpHandler, Exchange, Outcome } from './handler.ts';
import { FullHandler } from './full.ts';
import { ProxyHandler } from './proxy.ts';
import { BootServerHandler } from './boot-server.ts';
import { buildReply, networkOptions, replyIface } from './reply.ts';
import type { Answer, Built, ReplyIface } from './reply.ts';
import { describeClient, screen } from './request.ts';
import { macFromBytes } from '../../lib/mac.ts';
import { openSocket, resolveInterfaces } from './sockets.ts';
import type { DhcpSettings } from './settings.ts';
import { ReplySender } from './reply-sender.ts';
import { LeaseDbError } from './lease-backend.ts';
import { BatchReceiver } from './batch-receiver.ts';
import { loadDhcpIoAddon } from './io-addon.ts';
import type { ReplyOut } from './reply-sender.ts';

export { DhcpServerError } from './sockets.ts';

export interface DhcpServerOptions {
  settings: DhcpSettings;
  selector: Selector;
  /** Labels learned per MAC, shared with TFTP/GRUB and HTTP: DHCP adds the UUID and the architecture. */
  labels: MachineLabels;
  timeline: DhcpEvents;
  log: Logger;
  /** The server runs on a thread of its own (thread-worker.ts): its lease journal may block it while syncing. */
  ownThread?: boolean;
}

/** What DHCP records: the boot timeline itself, or, on the DHCP thread (thread.ts), a batch on its way to it. */
export interface DhcpEvents {
  record(mac: string, kind: BootEventKind, detail?: EventDetail, reason?: string): unknown;
  recordIgnored(mac: string, kind: BootEventKind, reason: string, detail?: EventDetail): unknown;
}

export interface DhcpServer {
  close(): Promise<void>;
  leases(): LeaseInfo[];
  /** The same, one at a time (LeasePool.each), for callers that list in slices. With PostgreSQL: the table as last read. */
  eachLease(): Iterable<LeaseInfo>;
}

/** The server on this thread, which can also be stopped at once. */
export interface LocalDhcpServer extends DhcpServer {
  /** Stops reading and sending now, nothing flushed: the DHCP thread's crash path, which must close the addon's poll handles before the thread ends. */
  abort(): void;
}

export interface Iface {
  reply: ReplyIface;
  /** What handlers see of it, built once. */
  facts: Exchange['iface'];
}

export async function startDhcpServer(opts: DhcpServerOptions): Promise<LocalDhcpServer> {
  const { settings, log } = opts;
  if (settings.mode === 'off') {
    log.info('dhcp: off');
    return { close: async () => {}, abort: () => {}, leases: () => [], eachLease: () => [] };
  }
  const served = resolveInterfaces(settings.address, settings.interfaces);
  const ourIds = new Set([settings.address, ...served.map((i) => i.address)]);
  const leases = settings.mode === 'full' ? await openLeases(settings, served, ourIds, log, opts.ownThread ?? false) : undefined;
  const network = networkOptions(leases ? settings.pool : undefined);
  const ifaces: Iface[] = served.map((i) => ({
    reply: replyIface(i.name, i.address, i.mtu, network),
    // Full mode: whether the pool's subnet is this interface's network.
    facts: { name: i.name, address: i.address, servesPool: leases?.backend.inSubnet(i.address) ?? false },
  }));
  const main: DhcpHandler = leases
    ? new FullHandler({ pool: leases.backend, ourIds, authoritative: settings.authoritative, log })
    : new ProxyHandler(settings.port);
  const packets = new PacketHandler(opts, main, new BootServerHandler(settings.proxyPort), leases?.file);

  const loaded = loadDhcpIoAddon();
  if ('missing' in loaded) log.warn('dhcp: the dhcpio addon is not built; packets are read and sent one at a time (run: bash scripts/setup.sh)', { error: loaded.missing });
  const addon = 'addon' in loaded ? loaded.addon : undefined;
  const open: { receiver: BatchReceiver; sender: ReplySender }[] = [];
  const closeSockets = () => {
    for (const o of open) {
      o.receiver.stop();
      o.sender.close();
    }
  };
  try {
    for (const iface of ifaces) {
      for (const [port, proxyPort] of [[settings.port, false], [settings.proxyPort, true]] as const) {
        const socket = await openSocket(port, iface.reply.name);
        const onError = (e: Error) => log.warn('dhcp: socket error', { iface: iface.reply.name, port, error: e.message });
        const sender = new ReplySender(socket, addon, onError);
        const receiver = new BatchReceiver(socket, addon, (buf, rinfo) => packets.receive(sender, buf, rinfo, iface, proxyPort));
        open.push({ receiver, sender });
        socket.on('error', onError);
      }
    }
  } catch (e) {
    closeSockets();
    await leases?.close();
    throw e;
  }

  log.info('dhcp: listening', {
    mode: settings.mode,
    interfaces: served.map((i) => `${i.name}=${i.address}`).join(','),
    port: settings.port,
    proxyPort: settings.proxyPort,
  });
  return {
    leases: () => leases?.listing.list() ?? [],
    eachLease: () => leases?.listing.each() ?? [],
    abort() {
      packets.closing = true;
      packets.closed = true;
      closeSockets();
    },
    async close() {
      if (packets.closing) return;
      packets.closing = true;
      try {
        await leases?.close();
      } finally {
        packets.closed = true;
        closeSockets();
      }
    },
  };
}

/** One packet's way: decode, screen, classify, dispatch to a handler, store, send. */
export class PacketHandler {
  /** No new packets, but ACKs whose leases are being written still go out. */
  closing = false;
  /** Sockets gone. */
  closed = false;
  private readonly opts: DhcpServerOptions;
  private readonly main: DhcpHandler;
  private readonly bootServer: DhcpHandler;
  private readonly file: LeaseFile | undefined;
  private lastHost = '';
  private lastPort = 0;
  private lastTo = '';

  constructor(opts: DhcpServerOptions, main: DhcpHandler, bootServer: DhcpHandler, file: LeaseFile | undefined) {
    this.opts = opts;
    this.main = main;
    this.bootServer = bootServer;
    this.file = file;
  }

  receive(replies: ReplyOut, buf: Buffer, rinfo: RemoteInfo, iface: Iface, proxyPort: boolean): void {
    if (this.closing) return;
    // From here to the reply's send is the server's answer time (events carry it as `ms`).
    const t0 = performance.now();
    let p: DhcpPacket;
    try {
      // Node gives each datagram its own memory, which nothing else writes to: no copy needed.
      p = decodeDhcp(buf, true);
    } catch (e) {
      if (!(e instanceof DhcpDecodeError)) throw e;
      // The chaddr may still be readable from a damaged packet: it names the timeline.
      const mac = buf.length >= 34 && buf[1] === 1 && buf[2] === 6 ? macFromBytes(buf.subarray(28, 34)) : 'unknown';
      this.ignore(mac, `malformed packet: ${e.message}`, { from: `${rinfo.address}:${rinfo.port}`, bytes: buf.length, iface: iface.reply.name });
      return;
    }
    const mac = p.htype === 1 && p.hlen === 6 ? macFromBytes(p.chaddr) : 'unknown';
    try {
      this.dispatch(replies, p, mac, rinfo, iface, proxyPort, t0);
    } catch (e) {
      // A bug must cost one packet, not the server.
      this.opts.log.error('dhcp: failed to handle a packet', { mac, error: (e as Error).stack ?? String(e) });
      this.ignore(mac, `internal error: ${(e as Error).message}`);
    }
  }

  private ignore(mac: string, reason: string, detail?: Record<string, string | number | boolean>): void {
    // MACs with no timeline yet (junk, floods) are only counted per reason.
    this.opts.timeline.recordIgnored(mac, 'dhcp.ignored', reason, detail);
    this.opts.log.debug('dhcp: ignored', { mac, reason });
  }

  private dispatch(replies: ReplyOut, p: DhcpPacket, mac: string, rinfo: RemoteInfo, iface: Iface, proxyPort: boolean, t0: number): void {
    const s = screen(p, rinfo.address);
    if ('ignore' in s) return this.ignore(mac, s.ignore, p.op !== 1 ? { iface: iface.reply.name } : undefined);
    const { selector, labels, timeline, settings } = this.opts;
    const facts = clientFacts(p);
    if (facts.uuid) labels.note(mac, { uuid: facts.uuid });
    const machine = selector.machine(mac);
    const decision = classify(facts, { httpBase: settings.httpBase, override: machine?.bootfile, shim: this.signedChainShim(mac, facts) });
    timeline.record(mac, s.kind, describeClient(p, facts, decision, iface.reply.name, proxyPort));
    const x: Exchange = { packet: p, mac, type: s.type, decision, iface: iface.facts, hostname: machine?.hostname };
    const out = (proxyPort ? this.bootServer : this.main).handle(x);
    if (!(out instanceof Promise)) return this.conclude(replies, p, mac, rinfo, iface, proxyPort, out, t0);
    out.then(
      (o) => {
        // The socket may be gone by the time a lease database answers.
        if (!this.closed) this.conclude(replies, p, mac, rinfo, iface, proxyPort, o, t0);
      },
      (e: Error) => {
        if (e instanceof LeaseDbError) return this.ignore(mac, e.message);
        this.opts.log.error('dhcp: failed to handle a packet', { mac, error: e.stack ?? String(e) });
        this.ignore(mac, `internal error: ${e.message}`);
      },
    );
  }

  /** What the handler decided: store, send, or say why not. */
  private conclude(replies: ReplyOut, p: DhcpPacket, mac: string, rinfo: RemoteInfo, iface: Iface, proxyPort: boolean, out: Outcome, t0: number): void {
    if (out.kind === 'ignore') return this.ignore(mac, out.reason);
    if (out.kind === 'store') {
      this.persist(out.record).catch((e: Error) => this.opts.log.error(`dhcp: cannot store a ${out.what}`, { error: e.message }));
      return;
    }
    const arrival = { proxyPort, address: rinfo.address, port: rinfo.port };
    const built = buildReply(p, out.answer, iface.reply, arrival);
    if (!out.persist) return this.send(replies, mac, out.answer, built, iface.reply, t0);
    // The ACK leaves only once its lease is on disk. It is built before the wait, so only its
    // bytes wait, not the request it answers (which would then outlive a young-generation collection).
    if (!this.file) return this.send(replies, mac, out.answer, built, iface.reply, t0);
    const answer = out.answer;
    const reply = iface.reply;
    this.file.store(out.persist, (e) => {
      if (e) return this.ignore(mac, `lease not stored, ACK withheld: ${e.message}`);
      if (this.closed) return;
      try {
        this.send(replies, mac, answer, built, reply, t0);
      } catch (err) {
        this.opts.log.error('dhcp: failed to send an ACK', { mac, error: (err as Error).message });
      }
    });
  }

  /** Shim's TFTP path when this UEFI x64 PXE client's profile boots the signed chain; selection runs only for those clients. */
  private signedChainShim(mac: string, facts: ClientFacts): string | undefined {
    if (isIpxe(facts) || (facts.arch !== ARCH.EFI_BC && facts.arch !== ARCH.EFI_X64)) return undefined;
    const { labels, selector } = this.opts;
    // GRUB's configuration is selected later from the same labels (MachineLabels), so both pick one profile.
    labels.note(mac, { arch: 'x86_64' });
    try {
      const { profile } = selector.select({ ...labels.get(mac), mac });
      return profile.secureBoot ? shimPath(profile) : undefined;
    } catch (e) {
      if (e instanceof NoProfileError) return undefined;
      throw e;
    }
  }

  /** "host:port" of a reply, one string per destination while it repeats (relays and broadcast do), not one per event kept. */
  private destination(host: string, port: number): string {
    if (host !== this.lastHost || port !== this.lastPort) {
      this.lastHost = host;
      this.lastPort = port;
      this.lastTo = `${host}:${port}`;
    }
    return this.lastTo;
  }

  private persist(record: LeaseRecord): Promise<void> {
    return this.file ? this.file.append(record) : Promise.resolve();
  }

  private send(replies: ReplyOut, mac: string, a: Answer, built: Built, iface: ReplyIface, t0: number): void {
    if (!built.ok) return this.ignore(mac, built.reason);
    // Send errors reach the sender's error callback, which logs them.
    replies.send(built.bytes, built.port, built.host);
    const nak = a.type === MessageType.NAK;
    const d = a.decision;
    const detail: Record<string, string | number | boolean> = { to: this.destination(built.host, built.port), iface: iface.name, ms: Math.round((performance.now() - t0) * 100) / 100 };
    if (a.yiaddr) detail.ip = a.yiaddr;
    if (d?.bootfile && !nak) detail.bootfile = d.bootfile;
    if (d) detail.class = d.rule;
    if (d?.refused) detail.refused = d.refused;
    this.opts.timeline.record(mac, a.type === MessageType.OFFER ? 'dhcp.offer' : nak ? 'dhcp.nak' : 'dhcp.ack', detail, nak ? a.message : undefined);
  }
}
