// Full DHCP on :67: addresses from the lease pool (RFC 2131 4.3), with a boot
// file for network-boot clients. With the in-memory pool every change that
// must survive a restart comes back in the outcome for the caller to store
// and the outcome is immediate; with PostgreSQL (lease-pg.ts) the change is
// committed before the outcome's promise settles.
import { MessageType } from './codec.ts';
import type { DhcpPacket } from './codec.ts';
import { Opt, optIp, optString } from './options.ts';
import { ignore } from './handler.ts';
import type { DhcpHandler, Exchange, Outcome } from './handler.ts';
import type { ClientRef, RequestKind } from './leases.ts';
import { andThen } from './lease-backend.ts';
import type { LeaseBackend, Maybe } from './lease-backend.ts';
import type { Logger } from '../log.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';

const ZERO = '0.0.0.0';

export interface FullHandlerOptions {
  pool: LeaseBackend;
  /** Every address option 54 may name for us. */
  ourIds: ReadonlySet<string>;
  authoritative: boolean;
  log: Logger;
  now?: () => number;
}

export class FullHandler implements DhcpHandler {
  private readonly pool: LeaseBackend;
  private readonly ourIds: ReadonlySet<string>;
  private readonly authoritative: boolean;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly logThrottle: LogThrottle;

  constructor(opts: FullHandlerOptions) {
    this.pool = opts.pool;
    this.ourIds = opts.ourIds;
    this.authoritative = opts.authoritative;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    // Lines any client can cause once per packet (the timeline has each one).
    this.logThrottle = new LogThrottle(FLOOD_LOG_EVERY_MS, this.now);
  }

  handle(x: Exchange): Maybe<Outcome> {
    const { packet: p, mac, decision } = x;
    const pool = this.pool;
    if (p.giaddr !== ZERO && !pool.inSubnet(p.giaddr)) return ignore(`relay ${p.giaddr} is not in the pool subnet; no addresses for that network`);
    if (p.giaddr === ZERO && !x.iface.servesPool) return ignore(`interface ${x.iface.name} (${x.iface.address}) is not in the pool subnet`);
    if (decision.refused) {
      const count = this.logThrottle.note('no boot file');
      if (count !== undefined) this.log.info('dhcp: network-boot client gets an address but no boot file', { mac, reason: decision.refused, count });
    }
    const client = clientRef(p, mac);
    switch (x.type) {
      case MessageType.DISCOVER: {
        return andThen(pool.offer(client, optIp(p, Opt.REQUESTED_IP)), (grant): Outcome => {
          if (!grant.ok) return ignore(grant.reason);
          // RFC 2131 4.3.1: the OFFER names the lease the server will grant, not how long it holds the offer.
          return { kind: 'reply', answer: { type: MessageType.OFFER, yiaddr: grant.ip, leaseSeconds: pool.leaseSeconds, decision, hostname: x.hostname } };
        });
      }
      case MessageType.REQUEST:
        return this.request(x, client);
      case MessageType.DECLINE: {
        const ip = optIp(p, Opt.REQUESTED_IP);
        if (!ip) return ignore('DECLINE for no address, which this client does not hold');
        return andThen(pool.decline(client, ip), (record): Outcome => {
          if (!record) return ignore(`DECLINE for ${ip}, which this client does not hold`);
          const count = this.logThrottle.note('decline');
          if (count !== undefined) this.log.warn('dhcp: client declined an address (in use on the network?)', { mac, ip, count });
          return { kind: 'store', record, what: 'decline' };
        });
      }
      case MessageType.RELEASE:
        return andThen(pool.release(client, p.ciaddr), (record): Outcome => {
          if (!record) return ignore(`RELEASE for ${p.ciaddr}, which this client does not hold`);
          return { kind: 'store', record, what: 'release' };
        });
      case MessageType.INFORM:
        if (p.ciaddr === ZERO) return ignore('INFORM without ciaddr');
        return { kind: 'reply', answer: { type: MessageType.ACK, decision, hostname: x.hostname } };
    }
    return ignore(`DHCP message type ${x.type} is not served`);
  }

  /** RFC 2131 4.3.2: SELECTING, INIT-REBOOT and RENEWING/REBINDING requests. */
  private request(x: Exchange, client: ClientRef): Maybe<Outcome> {
    const p = x.packet;
    const pool = this.pool;
    const serverId = optIp(p, Opt.SERVER_ID);
    const requested = optIp(p, Opt.REQUESTED_IP);
    if (serverId !== undefined && !this.ourIds.has(serverId)) {
      if (this.authoritative) return nak(`server ${serverId} is not authoritative here`);
      // The client declined our offer by choosing another server's.
      pool.withdraw(client);
      return ignore(`REQUEST for server ${serverId}: the client chose another server's offer`);
    }
    let ip: string;
    let how: RequestKind;
    if (serverId !== undefined) {
      if (!requested) return ignore('REQUEST names our server but no requested address (option 50)');
      [ip, how] = [requested, 'selecting'];
    } else if (requested) {
      [ip, how] = [requested, 'init-reboot'];
    } else if (p.ciaddr !== ZERO) {
      [ip, how] = [p.ciaddr, 'renewing'];
    } else {
      return ignore('REQUEST names no address (no option 50, no ciaddr)');
    }
    if (how === 'selecting') return this.grant(x, client, ip, how);
    // A server with no record of the client stays silent (a MUST, for servers sharing a wire, as ISC's
    // non-authoritative mode does, even for an address on another network); a client we know, or any
    // client when we are authoritative, gets a NAK for the wrong network.
    if (this.authoritative) return this.onNetwork(x, client, ip, how);
    return andThen(pool.knows(client), (known) => {
      if (!known) return ignore(`REQUEST (${how}) for ${ip} from a client this server has no record of: left to the server that leased it (dhcp.authoritative: true answers it)`);
      return this.onNetwork(x, client, ip, how);
    });
  }

  private onNetwork(x: Exchange, client: ClientRef, ip: string, how: RequestKind): Maybe<Outcome> {
    if (!this.pool.inSubnet(ip)) return nak(`${ip} is not on this network`);
    return this.grant(x, client, ip, how);
  }

  private grant(x: Exchange, client: ClientRef, ip: string, how: RequestKind): Maybe<Outcome> {
    return andThen(this.pool.request(client, ip, how, x.hostname ?? optString(x.packet, Opt.HOSTNAME)), (grant): Outcome => {
      if (!grant.ok) return nak(grant.reason);
      const answer = { type: MessageType.ACK, yiaddr: grant.ip, leaseSeconds: this.seconds(grant.expires), decision: x.decision, hostname: x.hostname };
      return { kind: 'reply', answer, persist: grant.record };
    });
  }

  private seconds(expires: number): number {
    return Math.max(0, Math.round((expires - this.now()) / 1000));
  }
}

function nak(message: string): Outcome {
  return { kind: 'reply', answer: { type: MessageType.NAK, message } };
}

/** The lease's client: option 61 when sent (RFC 2132 gives it at least 2 bytes: type and id), else the MAC. */
export function clientRef(p: DhcpPacket, mac: string): ClientRef {
  const id = p.options.get(Opt.CLIENT_ID);
  return id && id.length >= 2 ? { mac, clientId: id.toString('hex') } : { mac };
}
