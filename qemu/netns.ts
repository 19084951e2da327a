// Private network namespaces: one with a bridge, and "hosts" (namespaces
// joined to the bridge by veth pairs). Nothing leaves the namespaces; destroy()
// removes them and kills what runs inside, by pid. Used by the demo, the QEMU
// rig and the tests.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { killPid, runCommand, sh, waitUntilGone, waitUntilGoneSync } from '../lib/process.ts';
import type { CommandOutput } from '../lib/process.ts';

/** How long teardown waits for the processes it killed to exit. */
export const GONE_WAIT_MS = 5000;

export class Netns {
  readonly name: string;
  private readonly children = new Set<ChildProcess>();
  private readonly hostNs: Netns[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * A handle on an existing namespace by name, for cleaning up after another
   * process (`zeroboot qemu down`); destroy() kills what runs in it by pid.
   */
  static attach(name: string): Netns {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`"${name}" is not a network namespace name`);
    return new Netns(name);
  }

  static async create(prefix = 'zbt'): Promise<Netns> {
    const ns = new Netns(`${prefix}-${randomBytes(4).toString('hex')}`);
    await sh('ip', ['netns', 'add', ns.name]);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** Runs `ip` inside this namespace. */
  ip(...args: string[]): Promise<string> {
    return sh('ip', ['-n', this.name, ...args]);
  }

  /** Runs a command inside this namespace to its end (see runCommand). */
  exec(cmd: string, args: string[], opts: { timeout?: number; input?: string } = {}): Promise<CommandOutput> {
    return runCommand('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Starts a long-running process in the namespace; killed on cleanup. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Adds a bridge with an address; returns its name. */
  async bridge(name: string, cidr: string): Promise<string> {
    await this.ip('link', 'add', name, 'type', 'bridge');
    await this.ip('addr', 'add', cidr, 'dev', name);
    await this.ip('link', 'set', name, 'up');
    return name;
  }

  /** Adds a tap device (a VM's NIC) joined to `bridge` and up; returns its name. */
  async tap(bridge: string, name: string): Promise<string> {
    await this.ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
    await this.ip('link', 'set', name, 'master', bridge);
    await this.ip('link', 'set', name, 'up');
    return name;
  }

  /** Pids of every process running in the namespace. */
  async pids(): Promise<number[]> {
    const out = await sh('ip', ['netns', 'pids', this.name]).catch(() => '');
    return out.split(/\s+/).filter(Boolean).map(Number);
  }

  /**
   * Creates a host namespace joined to `bridge` with a veth pair; the host
   * side is called `ifname` (default eth0) and has the given MAC.
   */
  async host(bridge: string, opts: { mac?: string; ifname?: string; cidr?: string } = {}): Promise<Netns> {
    const h = await Netns.create(`${this.name.slice(0, 8)}h`);
    this.hostNs.push(h);
    const tag = randomBytes(3).toString('hex');
    const a = `vb${tag}`;
    const b = `vh${tag}`;
    await this.ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', h.name);
    await this.ip('link', 'set', a, 'master', bridge);
    await this.ip('link', 'set', a, 'up');
    const ifname = opts.ifname ?? 'eth0';
    await h.ip('link', 'set', b, 'name', ifname);
    if (opts.mac) await h.ip('link', 'set', ifname, 'address', opts.mac);
    if (opts.cidr) await h.ip('addr', 'add', opts.cidr, 'dev', ifname);
    await h.ip('link', 'set', ifname, 'up');
    return h;
  }

  async destroy(): Promise<void> {
    const killed = [...this.children].map((c) => c.pid ?? 0).filter((pid) => pid > 0 && killPid(pid));
    for (const h of this.hostNs) await h.destroy();
    // Processes started with `ip netns exec` outlive the ip wrapper: kill what is left by pid.
    const pids = await sh('ip', ['netns', 'pids', this.name]).catch(() => '');
    killed.push(...pids.split(/\s+/).filter(Boolean).map(Number).filter((pid) => killPid(pid)));
    // Gone means gone: a caller that checks right after (or starts the next rig) must not find them exiting.
    await waitUntilGone(killed, GONE_WAIT_MS);
    await sh('ip', ['netns', 'del', this.name]).catch(() => undefined);
  }

  /**
   * destroy() for exit and signal handlers, which cannot await: kills what runs
   * in the namespace and its hosts by pid, waits for it to exit and deletes them,
   * synchronously; a failure is ignored.
   */
  destroySync(): void {
    for (const h of this.hostNs) h.destroySync();
    try {
      const pids = execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' });
      waitUntilGoneSync(pids.split(/\s+/).filter(Boolean).map(Number).filter((pid) => killPid(pid)), GONE_WAIT_MS);
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {}
  }
}
