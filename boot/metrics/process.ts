// The server process: event-loop delay (perf_hooks' sampler, one per
// server, stopped with it), resident memory, heap and CPU time. The delay
// statistics cover the time since the previous scrape, so a start-up spike
// does not hide in them for the life of the process.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

const STATS = ['min', 'mean', 'p50', 'p90', 'p99', 'max'] as const;
const RESOLUTION_MS = 10;

/** Registers the process metrics; returns the function that stops the sampler. */
export function processMetrics(register: Registry): () => void {
  const registers = [register];
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  new Gauge({
    name: 'zeroboot_event_loop_delay_seconds',
    help: 'Event-loop delay since the previous scrape (sampled every 10 ms), by statistic',
    labelNames: ['stat'],
    registers,
    collect() {
      const ns: Record<(typeof STATS)[number], number> = {
        min: delay.min, mean: delay.mean, p50: delay.percentile(50), p90: delay.percentile(90), p99: delay.percentile(99), max: delay.max,
      };
      // Before the first sample the histogram holds its sentinels (min 9.2e18, mean NaN). Each sample
      // is the time between two timer ticks, so the tick interval itself is taken off: an idle loop reads 0.
      const empty = delay.count === 0;
      for (const stat of STATS) this.set({ stat }, empty ? 0 : Math.max(0, ns[stat] - RESOLUTION_MS * 1e6) / 1e9);
      delay.reset();
    },
  });
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'nodejs_heap_used_bytes',
    help: 'V8 heap in use, in bytes',
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'User and system CPU time of the server process, in seconds',
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
  return () => delay.disable();
}
