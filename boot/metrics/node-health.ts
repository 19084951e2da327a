// Nodes and their zdbs, read at each scrape from the registry's last report
// of each node. Reports are signed by nodes, not trusted by us: fields of
// the wrong type count as nothing, and no node id or disk becomes a label.
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { NodeRecord } from '../registry/store.ts';

export interface NodeSource {
  list(): NodeRecord[];
}

interface ZdbCounts {
  healthy: number;
  unhealthy: number;
  restarts: number;
}

function zdbCounts(nodes: NodeRecord[]): ZdbCounts {
  const c: ZdbCounts = { healthy: 0, unhealthy: 0, restarts: 0 };
  for (const n of nodes) {
    const zdbs = n.lastReport?.zdbs;
    if (!Array.isArray(zdbs)) continue;
    for (const z of zdbs) {
      if (typeof z !== 'object' || z === null) continue;
      const { healthy, restarts } = z as { healthy?: unknown; restarts?: unknown };
      if (healthy === true) c.healthy++;
      else c.unhealthy++;
      if (typeof restarts === 'number' && Number.isFinite(restarts) && restarts > 0) c.restarts += restarts;
    }
  }
  return c;
}

export function nodeHealthMetrics(register: Registry, source: NodeSource, now: () => number = Date.now): void {
  const registers = [register];
  new Gauge({
    name: 'zeroboot_nodes',
    help: 'Nodes in the registry, by whether they reported as diskless',
    labelNames: ['diskless'],
    registers,
    collect() {
      const nodes = source.list();
      const diskless = nodes.filter((n) => n.diskless).length;
      this.set({ diskless: 'true' }, diskless);
      this.set({ diskless: 'false' }, nodes.length - diskless);
    },
  });
  new Gauge({
    name: 'zeroboot_node_last_report_age_seconds',
    help: 'Seconds since the oldest last report among the registry\'s nodes (0 with no nodes)',
    registers,
    collect() {
      let oldest = Infinity;
      for (const n of source.list()) oldest = Math.min(oldest, n.lastSeen);
      this.set(Number.isFinite(oldest) ? Math.max(0, (now() - oldest) / 1000) : 0);
    },
  });
  new Gauge({
    name: 'zeroboot_zdb_processes',
    help: 'zdb processes in the nodes\' last reports, by health',
    labelNames: ['healthy'],
    registers,
    collect() {
      const c = zdbCounts(source.list());
      this.set({ healthy: 'true' }, c.healthy);
      this.set({ healthy: 'false' }, c.unhealthy);
    },
  });
  new Gauge({
    name: 'zeroboot_zdb_restarts',
    help: 'Restarts of zdb processes, summed over the nodes\' last reports',
    registers,
    collect() {
      this.set(zdbCounts(source.list()).restarts);
    },
  });
}
