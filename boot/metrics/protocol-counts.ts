// DHCP and TFTP counts read off the boot timeline: every packet the DHCP
// server takes or answers and every TFTP transfer is an event there, so no
// hook in the protocol servers is needed. Events bump plain numbers (the
// DHCP path runs this per packet; prom-client hashes its labels on every
// inc), copied into the metrics at scrape time. Ignored packets from MACs
// the timeline does not know never reach a listener (the timeline only
// counts them per reason), so those counts are read from it then too.
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { BootEvent, BootTimeline } from '../timeline.ts';
import { DHCP_IGNORE_REASONS, ignoreReason } from './dhcp-reasons.ts';

const REQUEST_TYPES = ['discover', 'request', 'decline', 'release', 'inform'] as const;
const REPLY_TYPES = ['offer', 'ack', 'nak'] as const;
const TFTP_RESULTS = ['done', 'probe', 'error'] as const;

type Tally<K extends string> = Record<K, number>;
const tally = <K extends string>(keys: readonly K[]): Tally<K> => Object.fromEntries(keys.map((k) => [k, 0])) as Tally<K>;

/** A counter whose values are copied from `values()` at each scrape; every label value is always present. */
function mirroredCounter<K extends string>(register: Registry, name: string, help: string, label: string, keys: readonly K[], values: () => Tally<K>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [register],
    collect() {
      const v = values();
      this.reset();
      for (const k of keys) this.inc({ [label]: k }, v[k]);
    },
  });
}

export class ProtocolCounts {
  private readonly requests = tally(REQUEST_TYPES);
  private readonly replies = tally(REPLY_TYPES);
  /** Ignored packets of MACs with a timeline, seen as events; the rest are in timeline.ignored(). */
  private readonly ignoredSeen = tally(DHCP_IGNORE_REASONS);
  private readonly tftp = tally(TFTP_RESULTS);
  private tftpStarted = 0;
  private tftpBytes = 0;
  private readonly tftpSeconds: Histogram;
  /** Per reply type, the histogram's child (resolved once: a labelled observe hashes its labels each time). */
  private readonly replySeconds: Record<(typeof REPLY_TYPES)[number], { observe(v: number): void }>;

  constructor(register: Registry, timeline: BootTimeline) {
    mirroredCounter(register, 'zeroboot_dhcp_requests_total', 'DHCP client messages taken for an answer, by message type', 'type', REQUEST_TYPES, () => this.requests);
    mirroredCounter(register, 'zeroboot_dhcp_replies_total', 'DHCP replies sent, by message type', 'type', REPLY_TYPES, () => this.replies);
    mirroredCounter(register, 'zeroboot_dhcp_ignored_total', 'DHCP packets ignored, by reason (malformed: could not be decoded)', 'reason', DHCP_IGNORE_REASONS, () => {
      const totals = { ...this.ignoredSeen };
      for (const c of timeline.ignored()) if (c.kind === 'dhcp.ignored') totals[ignoreReason(c.reason)] += c.count;
      return totals;
    });
    mirroredCounter(register, 'zeroboot_tftp_transfers_total', 'TFTP requests ended, by result (probe: a tsize probe ended by the client; error: refused or failed)', 'result', TFTP_RESULTS, () => this.tftp);
    const self = this;
    new Counter({
      name: 'zeroboot_tftp_transfers_started_total',
      help: 'TFTP read requests that started a transfer',
      registers: [register],
      collect() {
        this.reset();
        this.inc(self.tftpStarted);
      },
    });
    new Counter({
      name: 'zeroboot_tftp_bytes_total',
      help: 'Bytes of completed TFTP transfers',
      registers: [register],
      collect() {
        this.reset();
        this.inc(self.tftpBytes);
      },
    });
    const replySeconds = new Histogram({
      name: 'zeroboot_dhcp_reply_seconds',
      help: 'Time from reading a DHCP request to sending its reply (with an ACK, the lease written to disk first), by reply type',
      labelNames: ['type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [register],
    });
    this.replySeconds = { offer: replySeconds.labels({ type: 'offer' }), ack: replySeconds.labels({ type: 'ack' }), nak: replySeconds.labels({ type: 'nak' }) };
    this.tftpSeconds = new Histogram({ name: 'zeroboot_tftp_transfer_seconds', help: 'Duration of completed TFTP transfers', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [register] });
  }

  observe(e: BootEvent): void {
    switch (e.kind) {
      case 'dhcp.discover': return void this.requests.discover++;
      case 'dhcp.request': return void this.requests.request++;
      case 'dhcp.decline': return void this.requests.decline++;
      case 'dhcp.release': return void this.requests.release++;
      case 'dhcp.inform': return void this.requests.inform++;
      case 'dhcp.offer':
      case 'dhcp.ack':
      case 'dhcp.nak': {
        const type = e.kind === 'dhcp.offer' ? 'offer' : e.kind === 'dhcp.ack' ? 'ack' : 'nak';
        this.replies[type]++;
        const ms = e.detail?.ms;
        if (typeof ms === 'number') this.replySeconds[type].observe(ms / 1000);
        return;
      }
      case 'dhcp.ignored': return void this.ignoredSeen[ignoreReason(e.reason ?? '')]++;
      case 'tftp.request': return void this.tftpStarted++;
      case 'tftp.done': {
        this.tftp.done++;
        const bytes = e.detail?.bytes;
        const ms = e.detail?.ms;
        if (typeof bytes === 'number') this.tftpBytes += bytes;
        if (typeof ms === 'number') this.tftpSeconds.observe(ms / 1000);
        return;
      }
      case 'tftp.error': return void (e.detail?.probe === true ? this.tftp.probe++ : this.tftp.error++);
      default:
    }
  }
}
