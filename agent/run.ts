// The agent's bring-up and reporting, from the parts in agent/: inventory,
// pools (prepare blank disks, reuse ours), SSD/HDD per pool, identity, one
// supervised zdb per HDD pool, then a signed report now and at every
// interval. On a node (deferZdbs) the zdbs start once the first report is
// out, not before: four Node processes starting beside it tripled its time
// under TCG, and the server learns the node's endpoints just as well from a
// report that says they are not up yet. Everything it needs comes in through AgentOptions; nothing is
// read from globals, so tests run it on loop devices and loopback.
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AgentCmdline } from './cmdline.ts';
import { capacity, type Capacity, type Pool } from './inventory/capacity.ts';
import { collectInventory, liveAddresses } from './inventory/index.ts';
import { crossCheck, siSnapshot } from './inventory/si.ts';
import type { Inventory } from './inventory/types.ts';
import { setupDisks, ZDB_SUBVOLUME, type DiskReport } from './disks/prepare.ts';
import { poolType, type PoolType } from './disks/seektime.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import { agentUsage, buildReport, sendReport, signReport, type SendOptions } from './report.ts';
import { warmUpPost } from './http-post.ts';
import { adminSecretOf, zdbPools, ZdbSupervisor, type SupervisorOptions } from './zdb-supervisor.ts';
import { Provisioner } from './provision.ts';
import type { SignedEnvelope } from '../lib/signed-report.ts';

export interface AgentOptions {
  cmdline: AgentCmdline;
  /** proc/ and sys/ are read under it (default /). */
  root?: string;
  /** Where pools are mounted (zos: /mnt). */
  mountRoot?: string;
  /** Where zdb sockets go. */
  runDir?: string;
  /** argv running `zeroboot` for the zdbs. */
  zeroboot: string[];
  basePort?: number;
  /** Ask systeminformation too (default true; off when reading a recorded root). */
  systeminformation?: boolean;
  /** For tests on the host only: treat loop devices as disks... */
  allowLoop?: boolean;
  /** ...and look at these devices (/dev paths) only, never the host's others. */
  onlyDevices?: string[];
  minDiskBytes?: number;
  supervisor?: Omit<SupervisorOptions, 'command'>;
  /**
   * Start the zdbs after the first report rather than in bringUp(): once it
   * is accepted or has failed, or after `firstReportHoldMs` (default 10 s)
   * whichever comes first, so a server that does not answer never holds them back.
   */
  deferZdbs?: boolean;
  firstReportHoldMs?: number;
  send?: SendOptions;
  log?: (msg: string) => void;
}

export type PoolReport = DiskReport & Partial<PoolType>;

export class Agent {
  readonly inventory: Inventory;
  readonly disks: PoolReport[];
  readonly identity: Identity;
  readonly capacity: Capacity;
  readonly zdbs: ZdbSupervisor[];
  private readonly opts: AgentOptions;
  private timer: NodeJS.Timeout | undefined;
  private provisioner: Provisioner | undefined;
  /** How long the last report's zdb checks took (logged with the first report). */
  private lastCheckMs = 0;
  private stopped = false;

  private constructor(opts: AgentOptions, inventory: Inventory, disks: PoolReport[], identity: Identity, cap: Capacity, zdbs: ZdbSupervisor[]) {
    this.opts = opts;
    this.inventory = inventory;
    this.disks = disks;
    this.identity = identity;
    this.capacity = cap;
    this.zdbs = zdbs;
  }

  static async bringUp(opts: AgentOptions): Promise<Agent> {
    const root = opts.root ?? '/';
    const mountRoot = opts.mountRoot ?? '/mnt';
    const { cmdline } = opts;
    // The first report's HTTP client is loaded while the disks are prepared (mkfs and the seek
    // measurements leave the event loop idle), not on its critical path after them.
    if (opts.cmdline.server) warmUpPost(opts.cmdline.server);
    // Phase times go to the log: on a slow node (TCG, a slow disk) they say where bring-up went.
    let mark = performance.now();
    const phases: string[] = [];
    const phase = (name: string) => {
      const now = performance.now();
      phases.push(`${name} ${Math.round(now - mark)} ms`);
      mark = now;
    };
    // systeminformation's view is asked for beside the disk preparation (mkfs runs in child processes):
    // the disks are decided from sysfs alone, and its answers only fill details and notes afterwards.
    const live = opts.systeminformation ?? root === '/';
    const si = live ? siSnapshot() : undefined;
    si?.catch(() => undefined);
    const inventory = collectInventory({ root, debugVm: cmdline.debugVm, ...(live ? { addresses: liveAddresses() } : {}) });
    // Under a recorded tree, devices are looked for in it too (never the live machine's /dev).
    if (root !== '/') for (const d of inventory.disks) d.path = join(root, 'dev', d.name);
    phase('inventory');
    const candidates = opts.onlyDevices ? inventory.disks.filter((d) => opts.onlyDevices!.includes(d.path)) : inventory.disks;
    const reports = await setupDisks(candidates, { mountRoot, root, allowLoop: opts.allowLoop ?? false, ...(opts.minDiskBytes ? { minDiskBytes: opts.minDiskBytes } : {}) });
    phase('disks');
    if (si) crossCheck(inventory, await si);
    phase('systeminformation');
    const disks: PoolReport[] = [];
    const pools: (Pool & { report: PoolReport })[] = [];
    for (const r of reports) {
      const d = inventory.disks.find((x) => x.name === r.name)!;
      if (r.mountPoint === undefined) {
        disks.push(r);
        continue;
      }
      const t = await poolType(r.mountPoint, r.path, r.sizeBytes, { name: d.name, bus: d.bus, rotational: d.rotational, virtualized: inventory.virtualized, debugVm: cmdline.debugVm });
      const full: PoolReport = { ...r, ...t };
      disks.push(full);
      pools.push({ sizeBytes: r.sizeBytes, type: t.type, report: full });
    }
    phase('disk types');
    const { identity, conflicts } = await loadOrCreateIdentity(pools.map((p) => p.report.mountPoint!));
    for (const c of conflicts) opts.log?.(`pool ${c} holds another node key; kept ${identity.nodeId}`);
    const runDir = opts.runDir ?? '/run/zeroboot';
    await mkdir(runDir, { recursive: true });
    const zdbs: ZdbSupervisor[] = [];
    for (const [i, p] of zdbPools(pools, cmdline.missingSsd).entries()) {
      const dir = join(p.report.mountPoint!, ZDB_SUBVOLUME);
      const sup = new ZdbSupervisor(
        { disk: p.report.name, dir, port: (opts.basePort ?? 9900) + i, socket: join(runDir, `zdb-${basename(p.report.name)}.sock`), adminSecret: await adminSecretOf(dir) },
        { command: opts.zeroboot, ...opts.supervisor, ...(opts.log ? { log: opts.log } : {}) },
      );
      zdbs.push(sup);
    }
    const agent = new Agent(opts, inventory, disks, identity, capacity(inventory.cpu.logical, inventory.memoryBytes, pools), zdbs);
    if (!opts.deferZdbs) agent.startZdbs();
    phase(opts.deferZdbs ? 'identity' : 'identity and zdb start');
    opts.log?.(`bring-up: ${phases.join(', ')}`);
    return agent;
  }

  /** Starts the zdbs not started yet (after stop(), none). */
  startZdbs(): void {
    if (this.stopped) return;
    for (const z of this.zdbs) if (!z.started) z.start();
  }

  /** A signed report of the current state, with a fresh timestamp and nonce. */
  report(now = Date.now()): SignedEnvelope {
    const { cmdline } = this.opts;
    const payload = buildReport(
      {
        identity: this.identity,
        inventory: this.inventory,
        capacity: this.capacity,
        disks: this.disks as unknown as Record<string, unknown>[],
        zdbs: this.zdbs.map((z) => z.health()),
        ...(cmdline.bootMac ? { bootMac: cmdline.bootMac } : {}),
        ...(cmdline.farmerId !== undefined ? { farmerId: cmdline.farmerId } : {}),
        runmode: cmdline.runmode,
        agent: agentUsage(),
      },
      now,
    );
    return signReport(payload, this.identity);
  }

  /** Checks every zdb, then sends one report (with retries, each attempt signed afresh). */
  async sendOnce(): Promise<unknown> {
    const server = this.opts.cmdline.server;
    if (!server) throw new Error('no server to report to: boot with zeroboot.server=<url>');
    const start = performance.now();
    await Promise.all(this.zdbs.filter((z) => z.started).map((z) => z.check()));
    this.lastCheckMs = performance.now() - start;
    return (await sendReport(server, () => this.report(), this.opts.send)).response;
  }

  /** Reports now and every `intervalMs`, logging failures and carrying on; `onSent` hears each accepted report's answer. */
  startReporting(intervalMs: number, onSent?: (response: unknown) => void): void {
    let accepted = false;
    const tick = async () => {
      const start = performance.now();
      try {
        const sending = this.sendOnce();
        if (this.zdbs.some((z) => !z.started)) void this.startZdbsAfter(sending);
        const response = await sending;
        if (!accepted) {
          accepted = true;
          this.opts.log?.(`first report accepted in ${Math.round(performance.now() - start)} ms (zdb checks ${Math.round(this.lastCheckMs)} ms)`);
          this.startTaskPolls();
        }
        onSent?.(response);
      } catch (e) {
        this.opts.log?.(`report failed: ${(e as Error).message}`);
      }
      if (this.timer !== undefined) this.timer = setTimeout(() => void tick(), intervalMs);
    };
    this.timer = setTimeout(() => void tick(), 0);
  }

  /** Starts the zdbs once `first` settles, or after firstReportHoldMs. */
  private async startZdbsAfter(first: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // Unref'd: the report in flight keeps the process up meanwhile; a stopped agent need not wait for it.
    const hold = new Promise<void>((r) => (timer = setTimeout(r, this.opts.firstReportHoldMs ?? 10_000).unref()));
    await Promise.race([first.catch(() => undefined), hold]);
    clearTimeout(timer);
    this.startZdbs();
  }

  /**
   * Namespace tasks: the node long-polls the server for them (agent/provision.ts) when it has a zdb to make
   * them in; from its first accepted report on, since the server refuses polls from a node it does not know.
   */
  private startTaskPolls(): void {
    const server = this.opts.cmdline.server;
    if (!server || this.zdbs.length === 0 || this.provisioner || this.timer === undefined) return;
    (this.provisioner = new Provisioner({ server, identity: this.identity, zdbs: () => this.zdbs.map((z) => z.spec), ...(this.opts.log ? { log: this.opts.log } : {}) })).start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.provisioner?.stop();
    await Promise.all(this.zdbs.map((z) => z.stop()));
  }
}
