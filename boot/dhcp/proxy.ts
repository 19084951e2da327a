// Proxy DHCP on :67: another server leases the addresses; we answer only
// network-boot clients, with a boot file and no address.
import { MessageType } from './codec.ts';
import { ignore, TYPE_NAME } from './handler.ts';
import type { DhcpHandler, Exchange, Outcome } from './handler.ts';

export class ProxyHandler implements DhcpHandler {
  private readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  handle(x: Exchange): Outcome {
    const d = x.decision;
    if (!d.netboot) return ignore('not a network-boot client (no PXEClient/HTTPClient/iPXE): proxy mode leaves it to the address server');
    if (!d.bootfile) return ignore(d.refused ?? 'no boot file for this client');
    if (x.type === MessageType.DISCOVER) return { kind: 'reply', answer: { type: MessageType.OFFER, decision: d } };
    // An ACK from us without an address could beat the address server's and confuse the client;
    // PXE clients that want more from a proxy ask on the boot-server port.
    return ignore(`proxy mode: a ${TYPE_NAME[x.type]} on port ${this.port} is for the address server`);
  }
}
