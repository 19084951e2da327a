// The agent's bring-up and reporting, from the parts in agent/: inventory,
// pools (prepare blank disks, reuse ours), SSD/HDD per pool, identity, one
// supervised zdb per HDD pool, then a signed report now and at every
// interval. On a node (deferZdbs) the zdbs start once the first report is
// out, not before: four Node processes starting beside it tripled its time
// under TCG, and the server learns the node's endpoints just as well from a
// report that says they are not up yet. With deferPools (on a node too) the
// blank disks are formatted after the first report as well, and
// systeminformation is asked then: the first report lists those disks as
// `preparing`, and the next one, sent as soon as they are pools, has them,
// the key stored on them and their zdbs. Everything it needs comes in through AgentOptions; nothing is
// read from globals, so tests run it on loop devices and loopback.
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AgentCmdline } from './cmdline.ts';
import { capacity, type Capacity, type Pool } from './inventory/capacity.ts';
import { collectInventory, liveAddresses } from './inventory/index.ts';
import { crossCheck, siSnapshot } from './inventory/si.ts';
import type { Inventory } from './inventory/types.ts';
import { prepareDisks, setupDisks, ZDB_SUBVOLUME, type DiskReport, type DiskSetupOptions } from './disks/prepare.ts';
import { poolType, type PoolType } from './disks/seektime.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import { agentUsage, buildReport, sendReport, signReport, type SendOptions } from './report.ts';
import { warmUpPost } from './http-post.ts';
import { adminSecretOf, zdbPools, ZdbSupervisor, type SupervisorOptions } from './zdb-supervisor.ts';
import type { Provisioner } from './provision.ts';
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
  /**
   * Format blank disks after the first report rather than in bringUp() (as
   * the zdbs: once it is answered or firstReportHoldMs passed), and ask
   * systeminformation only then. mkfs was the largest part of a node's time
   * to its first report under TCG. Until its pools exist, a node whose
   * only pools are new ones reports as diskless (its key in memory); the
   * key is then stored on them, so its id stays.
   */
  deferPools?: boolean;
  firstReportHoldMs?: number;
  send?: SendOptions;
  log?: (msg: string) => void;
}

export type PoolReport = DiskReport & Partial<PoolType>;

/** The disks' reports in order, and those that are pools (with their SSD/HDD type). */
async function typedPools(reports: DiskReport[], inventory: Inventory, cmdline: AgentCmdline): Promise<{ disks: PoolReport[]; pools: (Pool & { report: PoolReport })[] }> {
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
  return { disks, pools };
}

export class Agent {
  readonly inventory: Inventory;
  /** These four change once, when deferred pools are made (deferPools). */
  disks: PoolReport[];
  identity: Identity;
  capacity: Capacity;
  zdbs: ZdbSupervisor[];
  private readonly opts: AgentOptions;
  private readonly diskOpts: DiskSetupOptions;
  /** Whether systeminformation is still to be asked (deferPools on a live machine). */
  private siLater: boolean;
  private timer: NodeJS.Timeout | undefined;
  private tick: (() => Promise<void>) | undefined;
  private sending = false;
  /** A report was asked for while one was on its way: the next one goes at once. */
  private soon = false;
  /** The work that waits for the first report (zdbs, deferred pools), once started. */
  private afterFirst: Promise<void> | undefined;
  /** The namespace-task poller, loaded on demand (its modules are not on the first report's path). */
  private provisioner: Promise<Provisioner | undefined> | undefined;
  /** How long the last report's zdb checks took (logged with the first report). */
  private lastCheckMs = 0;
  private stopped = false;

  private constructor(opts: AgentOptions, diskOpts: DiskSetupOptions, siLater: boolean, inventory: Inventory, disks: PoolReport[], identity: Identity, cap: Capacity, zdbs: ZdbSupervisor[]) {
    this.opts = opts;
    this.diskOpts = diskOpts;
    this.siLater = siLater;
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
    const si = live && !opts.deferPools ? siSnapshot() : undefined;
    si?.catch(() => undefined);
    const inventory = collectInventory({ root, debugVm: cmdline.debugVm, ...(live ? { addresses: liveAddresses() } : {}) });
    // Under a recorded tree, devices are looked for in it too (never the live machine's /dev).
    if (root !== '/') for (const d of inventory.disks) d.path = join(root, 'dev', d.name);
    phase('inventory');
    const candidates = opts.onlyDevices ? inventory.disks.filter((d) => opts.onlyDevices!.includes(d.path)) : inventory.disks;
    const diskOpts: DiskSetupOptions = { mountRoot, root, allowLoop: opts.allowLoop ?? false, ...(opts.minDiskBytes ? { minDiskBytes: opts.minDiskBytes } : {}) };
    const reports = await setupDisks(candidates, { ...diskOpts, deferBlank: opts.deferPools ?? false });
    phase('disks');
    if (si) crossCheck(inventory, await si);
    phase('systeminformation');
    const { disks, pools } = await typedPools(reports, inventory, cmdline);
    phase('disk types');
    const { identity, conflicts } = await loadOrCreateIdentity(pools.map((p) => p.report.mountPoint!));
    for (const c of conflicts) opts.log?.(`pool ${c} holds another node key; kept ${identity.nodeId}`);
    // With disks still to be made pools, the zdbs are made with them (their ports follow the pools' order).
    const zdbs = disks.some((d) => d.state === 'preparing') ? [] : await Agent.zdbsFor(opts, pools);
    const agent = new Agent(opts, diskOpts, live && !si, inventory, disks, identity, capacity(inventory.cpu.logical, inventory.memoryBytes, pools), zdbs);
    if (!opts.deferZdbs && !opts.deferPools) agent.startZdbs();
    phase(opts.deferZdbs || opts.deferPools ? 'identity' : 'identity and zdb start');
    opts.log?.(`bring-up: ${phases.join(', ')}`);
    return agent;
  }

  /** One supervisor (not started) per pool that zos's rules give a zdb. */
  private static async zdbsFor(opts: AgentOptions, pools: (Pool & { report: PoolReport })[]): Promise<ZdbSupervisor[]> {
    const runDir = opts.runDir ?? '/run/zeroboot';
    await mkdir(runDir, { recursive: true });
    const zdbs: ZdbSupervisor[] = [];
    for (const [i, p] of zdbPools(pools, opts.cmdline.missingSsd).entries()) {
      const dir = join(p.report.mountPoint!, ZDB_SUBVOLUME);
      zdbs.push(
        new ZdbSupervisor(
          { disk: p.report.name, dir, port: (opts.basePort ?? 9900) + i, socket: join(runDir, `zdb-${basename(p.report.name)}.sock`), adminSecret: await adminSecretOf(dir) },
          { command: opts.zeroboot, ...opts.supervisor, ...(opts.log ? { log: opts.log } : {}) },
        ),
      );
    }
    return zdbs;
  }

  /**
   * What deferPools left for after the first report: systeminformation's
   * details, then the `preparing` disks made pools (all at once), the key
   * stored on the pools, capacity and zdbs. Says whether anything changed.
   */
  private async finishBringUp(): Promise<boolean> {
    const { log } = this.opts;
    let changed = false;
    if (this.siLater) {
      this.siLater = false;
      try {
        crossCheck(this.inventory, await siSnapshot());
        changed = true;
      } catch (e) {
        log?.(`systeminformation failed: ${(e as Error).message}`);
      }
    }
    const pending = this.disks.filter((d) => d.state === 'preparing');
    if (pending.length === 0 || this.stopped) return changed;
    const start = performance.now();
    const made = await prepareDisks(
      pending.map((d) => this.inventory.disks.find((x) => x.name === d.name)!),
      this.diskOpts,
    );
    const reports = this.disks.map((d) => made.find((m) => m.name === d.name) ?? d);
    const { disks, pools } = await typedPools(reports, this.inventory, this.opts.cmdline);
    const { identity, conflicts } = await loadOrCreateIdentity(
      pools.map((p) => p.report.mountPoint!),
      this.identity,
    );
    for (const c of conflicts) log?.(`pool ${c} holds another node key; kept ${identity.nodeId}`);
    if (identity.nodeId !== this.identity.nodeId) log?.(`a new pool holds node key ${identity.nodeId}; reporting as it from now on (was ${this.identity.nodeId})`);
    const zdbs = this.stopped ? [] : await Agent.zdbsFor(this.opts, pools);
    // All four at once, after the last await: a report sent meanwhile must not show the pools without their zdbs.
    this.disks = disks;
    this.identity = identity;
    this.capacity = capacity(this.inventory.cpu.logical, this.inventory.memoryBytes, pools);
    this.zdbs = zdbs;
    log?.(`pools made after the first report in ${Math.round(performance.now() - start)} ms: ${made.map((m) => `${m.name} ${m.state}`).join(', ')}`);
    return true;
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
    this.tick = async () => {
      const start = performance.now();
      this.sending = true;
      try {
        const sending = this.sendOnce();
        this.afterFirst ??= this.afterFirstReport(sending);
        const response = await sending;
        if (!accepted) {
          accepted = true;
          this.opts.log?.(`first report accepted in ${Math.round(performance.now() - start)} ms (zdb checks ${Math.round(this.lastCheckMs)} ms)`);
        }
        // From the first accepted report on; the zdbs may come only with deferred pools.
        this.startTaskPolls();
        onSent?.(response);
      } catch (e) {
        this.opts.log?.(`report failed: ${(e as Error).message}`);
      }
      this.sending = false;
      if (this.timer !== undefined) this.timer = setTimeout(() => void this.tick?.(), this.soon ? 0 : intervalMs);
      this.soon = false;
    };
    this.timer = setTimeout(() => void this.tick?.(), 0);
  }

  /** The next report at once (after the one on its way, if any) rather than at the interval. */
  private reportSoon(): void {
    if (this.timer === undefined) return;
    if (this.sending) {
      this.soon = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick?.(), 0);
  }

  /** Once `first` settles, or after firstReportHoldMs: what deferPools left, the zdbs, and a report with them. */
  private async afterFirstReport(first: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // Unref'd: the report in flight keeps the process up meanwhile; a stopped agent need not wait for it.
    const hold = new Promise<void>((r) => (timer = setTimeout(r, this.opts.firstReportHoldMs ?? 10_000).unref()));
    await Promise.race([first.catch(() => undefined), hold]);
    clearTimeout(timer);
    const changed = await this.finishBringUp().catch((e: Error) => {
      this.opts.log?.(`preparing the pools failed: ${e.message}`);
      return false;
    });
    this.startZdbs();
    if (changed) this.reportSoon();
  }

  /**
   * Namespace tasks: the node long-polls the server for them (agent/provision.ts) when it has a zdb to make
   * them in; from its first accepted report on, since the server refuses polls from a node it does not know.
   */
  private startTaskPolls(): void {
    const server = this.opts.cmdline.server;
    if (!server || this.zdbs.length === 0 || this.provisioner || this.timer === undefined) return;
    // Imported here rather than with the agent: under TCG every module Node loads before the first report delays it.
    this.provisioner = import('./provision.ts').then(({ Provisioner }) => {
      if (this.stopped) return undefined;
      const p = new Provisioner({ server, identity: this.identity, zdbs: () => this.zdbs.map((z) => z.spec), ...(this.opts.log ? { log: this.opts.log } : {}) });
      p.start();
      return p;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Pools being made now are finished (at most firstReportHoldMs before that starts), so nothing is mounted after stop().
    await this.afterFirst;
    await (await this.provisioner)?.stop();
    await Promise.all(this.zdbs.map((z) => z.stop()));
  }
}
