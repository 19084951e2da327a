// Boots by stage, from the timeline: a boot starts at a machine's DHCP
// DISCOVER and moves through the stages below; the seconds from the
// DISCOVER to the first arrival at each stage go into one histogram per
// stage. The state kept per MAC is two numbers, kept only for machines the
// timeline holds (each one it drops is dropped here), so it is bounded by
// the timeline's own bounds; and MACs never become labels: a client
// claiming any number of MACs moves counts, never the series count.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { BootEvent, BootEventKind } from '../timeline.ts';

/** In boot order; `config` is the iPXE script or GRUB's per-machine configuration. */
export const BOOT_STAGES = ['dhcp', 'loader', 'config', 'kernel', 'initrd', 'report'] as const;
export type BootStage = (typeof BOOT_STAGES)[number];

const STAGE_OF: Partial<Record<BootEventKind, number>> = {
  'dhcp.offer': 0,
  'tftp.done': 1,
  'http.script': 2,
  'grub.config': 2,
  'http.kernel': 3,
  'http.initrd': 4,
};
const KERNEL = BOOT_STAGES.indexOf('kernel');
const REPORT = BOOT_STAGES.indexOf('report');
/** Past this, a DISCOVER starts a new boot even if the last one never reached its kernel. */
export const BOOT_WINDOW_MS = 30 * 60_000;

interface Boot {
  startMs: number;
  /** Index of the furthest stage reached; -1 before the first. */
  stage: number;
}

export interface BootStageOptions {
  now?: () => number;
}

export class BootStages {
  /** A plain Map: entries leave when the timeline drops their machine, so no recency order is needed here. */
  private readonly boots = new Map<string, Boot>();
  private readonly now: () => number;
  private started = 0;
  /** Per stage index; plain numbers, as DISCOVERs come at packet rate (prom-client hashes labels per inc). */
  private readonly reached = new Array<number>(BOOT_STAGES.length).fill(0);
  private readonly seconds: Histogram<'stage'>;

  constructor(register: Registry, opts: BootStageOptions = {}) {
    this.now = opts.now ?? Date.now;
    const registers = [register];
    const self = this;
    new Counter({
      name: 'zeroboot_boots_started_total',
      help: 'Boots started (a DHCP DISCOVER from a machine not already booting)',
      registers,
      collect() {
        this.reset();
        this.inc(self.started);
      },
    });
    new Counter({
      name: 'zeroboot_boot_stage_reached_total',
      help: 'Boots that reached each stage',
      labelNames: ['stage'],
      registers,
      collect() {
        this.reset();
        BOOT_STAGES.forEach((stage, i) => this.inc({ stage }, self.reached[i]));
      },
    });
    this.seconds = new Histogram({
      name: 'zeroboot_boot_stage_seconds',
      help: 'Seconds from a boot\'s DHCP DISCOVER to its first arrival at each stage',
      labelNames: ['stage'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600],
      registers,
    });
    const boots = this.boots;
    new Gauge({
      name: 'zeroboot_machines_by_stage',
      help: 'Machines followed, by the furthest stage of their current boot (none: DISCOVER seen, no stage yet)',
      labelNames: ['stage'],
      registers,
      collect() {
        const counts = new Array<number>(BOOT_STAGES.length + 1).fill(0);
        for (const b of boots.values()) counts[b.stage + 1]++;
        this.set({ stage: 'none' }, counts[0]);
        BOOT_STAGES.forEach((stage, i) => this.set({ stage }, counts[i + 1]));
      },
    });
    for (const stage of BOOT_STAGES) this.seconds.zero({ stage });
  }

  observe(e: BootEvent): void {
    if (e.kind === 'dhcp.discover') return this.discover(e.mac);
    const stage = STAGE_OF[e.kind];
    if (stage !== undefined && !e.reason) this.reach(e.mac, stage);
  }

  /** The node behind `mac` sent an accepted report. */
  reported(mac: string): void {
    this.reach(mac, REPORT);
  }

  /** The timeline dropped this machine. */
  forget(mac: string): void {
    this.boots.delete(mac);
  }

  private discover(mac: string): void {
    const now = this.now();
    const b = this.boots.get(mac);
    // iPXE asks for an address again after the ROM's loader: the same boot until the kernel was fetched.
    if (b && b.stage < KERNEL && now - b.startMs < BOOT_WINDOW_MS) return;
    this.boots.set(mac, { startMs: now, stage: -1 });
    this.started++;
  }

  private reach(mac: string, stage: number): void {
    const b = this.boots.get(mac);
    if (!b || stage <= b.stage) return;
    b.stage = stage;
    this.reached[stage]++;
    this.seconds.observe({ stage: BOOT_STAGES[stage] }, (this.now() - b.startMs) / 1000);
  }
}
