// The PXE boot-server exchange on :4011 (PXE 2.1 section 2.2.4): the client
// already has an address and asks for its boot file, naming a boot item.
import { MessageType } from './codec.ts';
import { Opt, optEncapsulated, PxeSubOpt } from './options.ts';
import { ignore, TYPE_NAME } from './handler.ts';
import type { DhcpHandler, Exchange, Outcome } from './handler.ts';

export class BootServerHandler implements DhcpHandler {
  private readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  handle(x: Exchange): Outcome {
    const d = x.decision;
    if (x.type !== MessageType.REQUEST && x.type !== MessageType.INFORM) return ignore(`a ${TYPE_NAME[x.type]} on the boot-server port ${this.port}`);
    if (!d.netboot) return ignore('not a network-boot client on the boot-server port');
    if (!d.bootfile) return ignore(d.refused ?? 'no boot file for this client');
    const item = optEncapsulated(x.packet, Opt.VENDOR_SPECIFIC)?.get(PxeSubOpt.BOOT_ITEM);
    const bootItem = item && item.length === 4 ? { type: item.readUInt16BE(0), layer: item.readUInt16BE(2) } : undefined;
    return { kind: 'reply', answer: { type: MessageType.ACK, decision: d, bootItem } };
  }
}
