// The server's metrics, in Prometheus text: one prom-client Registry per
// server (no global registry, so two servers in one process, as in tests,
// count apart). Most counts are read off the boot timeline; the HTTP port
// and the node registry hand in what the timeline does not hold.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Registry } from 'prom-client';
import type { BootTimeline } from '../timeline.ts';
import { normalizeMac } from '../../lib/mac.ts';
import { ProtocolCounts } from './protocol-counts.ts';
import { BootStages } from './boot-stages.ts';
import { HttpRequests } from './http-requests.ts';
import { nodeHealthMetrics } from './node-health.ts';
import type { NodeSource } from './node-health.ts';
import { processMetrics } from './process.ts';

export { DHCP_IGNORE_REASONS } from './dhcp-reasons.ts';
export { BOOT_STAGES } from './boot-stages.ts';
export { HTTP_ROUTES } from './http-requests.ts';

export interface ServerMetricsOptions {
  timeline: BootTimeline;
  /** The node registry: nodes and zdb health come from its last reports. */
  nodes?: NodeSource & { get(nodeId: string): { lastReport: Record<string, unknown> } | undefined };
  now?: () => number;
}

/** What the node-facing HTTP server tells the metrics. */
export interface HttpMetrics {
  /** Called once per request as it arrives; counts it when its response is over. `written`: the socket's bytes, sendfile's included. */
  request(req: IncomingMessage, res: ServerResponse, written?: (socket: Socket) => number): void;
  /** A report from `nodeId` was accepted. */
  reportAccepted(nodeId: string): void;
}

export class ServerMetrics implements HttpMetrics {
  readonly register = new Registry();
  private readonly stages: BootStages;
  private readonly http: HttpRequests;
  private readonly nodes: ServerMetricsOptions['nodes'];
  private readonly stops: (() => void)[] = [];

  constructor(opts: ServerMetricsOptions) {
    const { timeline } = opts;
    this.nodes = opts.nodes;
    const protocols = new ProtocolCounts(this.register, timeline);
    this.stages = new BootStages(this.register, { now: opts.now });
    this.http = new HttpRequests(this.register);
    if (opts.nodes) nodeHealthMetrics(this.register, opts.nodes, opts.now);
    this.stops.push(processMetrics(this.register));
    this.stops.push(
      timeline.subscribe((e) => {
        protocols.observe(e);
        this.stages.observe(e);
      }),
    );
    this.stops.push(timeline.subscribeDrops((mac) => this.stages.forget(mac)));
  }

  request(req: IncomingMessage, res: ServerResponse, written?: (socket: Socket) => number): void {
    this.http.request(req, res, written);
  }

  reportAccepted(nodeId: string): void {
    const report = this.nodes?.get(nodeId)?.lastReport;
    const mac = report && normalizeMac(String(report.bootMac ?? report.mac ?? ''));
    if (mac) this.stages.reported(mac);
  }

  /** The exposition: its content type and text. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.register.contentType, text: await this.register.metrics() };
  }

  close(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}
