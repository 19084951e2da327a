// DHCP and TFTP counts read off the boot timeline: every packet the DHCP
// server takes or answers and every TFTP transfer is an event there, so no
// hook in the protocol servers is needed. Ignored packets from MACs the
// timeline does not know never reach a listener (the timeline only counts
// them per reason), so those counts are read from it at each scrape.
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { DHCP_IGNORE_REASONS, ignoreReason } from './dhcp-reasons.ts';
import type { DhcpIgnoreReason } from './dhcp-reasons.ts';

const REQUEST_TYPES = ['discover', 'request', 'decline', 'release', 'inform'] as const;
const REPLY_TYPES = ['offer', 'ack', 'nak'] as const;
const TFTP_RESULTS = ['done', 'probe', 'error'] as const;

export class ProtocolCounts {
  private readonly dhcpRequests: Counter<'type'>;
  private readonly dhcpReplies: Counter<'type'>;
  private readonly tftpStarted: Counter;
  private readonly tftpTransfers: Counter<'result'>;
  private readonly tftpBytes: Counter;
  private readonly tftpSeconds: Histogram;
  /** Ignored packets of MACs with a timeline, seen as events; the rest are in timeline.ignored(). */
  private readonly ignoredSeen = new Map<DhcpIgnoreReason, number>();

  constructor(register: Registry, timeline: BootTimeline) {
    const registers = [register];
    this.dhcpRequests = new Counter({ name: 'zeroboot_dhcp_requests_total', help: 'DHCP client messages taken for an answer, by message type', labelNames: ['type'], registers });
    this.dhcpReplies = new Counter({ name: 'zeroboot_dhcp_replies_total', help: 'DHCP replies sent, by message type', labelNames: ['type'], registers });
    const ignoredSeen = this.ignoredSeen;
    new Counter({
      name: 'zeroboot_dhcp_ignored_total',
      help: 'DHCP packets ignored, by reason (malformed: could not be decoded)',
      labelNames: ['reason'],
      registers,
      collect() {
        const totals = new Map<DhcpIgnoreReason, number>(ignoredSeen);
        for (const c of timeline.ignored()) {
          const reason = ignoreReason(c.reason);
          totals.set(reason, (totals.get(reason) ?? 0) + c.count);
        }
        this.reset();
        for (const reason of DHCP_IGNORE_REASONS) this.inc({ reason }, totals.get(reason) ?? 0);
      },
    });
    this.tftpStarted = new Counter({ name: 'zeroboot_tftp_transfers_started_total', help: 'TFTP read requests that started a transfer', registers });
    this.tftpTransfers = new Counter({ name: 'zeroboot_tftp_transfers_total', help: 'TFTP requests ended, by result (probe: a tsize probe ended by the client; error: refused or failed)', labelNames: ['result'], registers });
    this.tftpBytes = new Counter({ name: 'zeroboot_tftp_bytes_total', help: 'Bytes of completed TFTP transfers', registers });
    this.tftpSeconds = new Histogram({ name: 'zeroboot_tftp_transfer_seconds', help: 'Duration of completed TFTP transfers', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    // Every label value exists from the start: a scraper sees zeros, and the series count never changes.
    for (const type of REQUEST_TYPES) this.dhcpRequests.inc({ type }, 0);
    for (const type of REPLY_TYPES) this.dhcpReplies.inc({ type }, 0);
    for (const result of TFTP_RESULTS) this.tftpTransfers.inc({ result }, 0);
  }

  observe(e: BootEvent): void {
    switch (e.kind) {
      case 'dhcp.discover': case 'dhcp.request': case 'dhcp.decline': case 'dhcp.release': case 'dhcp.inform':
        return this.dhcpRequests.inc({ type: e.kind.slice(5) });
      case 'dhcp.offer': case 'dhcp.ack': case 'dhcp.nak':
        return this.dhcpReplies.inc({ type: e.kind.slice(5) });
      case 'dhcp.ignored': {
        const reason = ignoreReason(e.reason ?? '');
        this.ignoredSeen.set(reason, (this.ignoredSeen.get(reason) ?? 0) + 1);
        return;
      }
      case 'tftp.request':
        return this.tftpStarted.inc();
      case 'tftp.done': {
        this.tftpTransfers.inc({ result: 'done' });
        const bytes = e.detail?.bytes;
        const ms = e.detail?.ms;
        if (typeof bytes === 'number') this.tftpBytes.inc(bytes);
        if (typeof ms === 'number') this.tftpSeconds.observe(ms / 1000);
        return;
      }
      case 'tftp.error':
        return this.tftpTransfers.inc({ result: e.detail?.probe === true ? 'probe' : 'error' });
      default:
    }
  }
}
