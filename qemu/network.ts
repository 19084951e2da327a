// The rig's private network: a namespace with one bridge carrying an IPv4
// subnet and an IPv6 prefix, router advertisements on it (iPXE otherwise
// waits ~16 s for IPv6 autoconfiguration), and one tap per VM NIC.
// Nothing leaves the namespace.
import { isIPv4 } from 'node:net';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns } from './netns.ts';
import { waitForOutput } from '../lib/process.ts';

export class NetworkConfigError extends Error {}

export interface RigNetworkOptions {
  /** IPv4 subnet of the bridge, /16 to /24 (default 10.77.0.0/24); the bridge takes the first address. */
  subnet?: string;
  /** IPv6 /64 prefix of the bridge (default fd77::/64); the bridge takes ::1. */
  ipv6Prefix?: string;
  /** Bridge name inside the namespace. */
  bridge?: string;
  /** Namespace name prefix (a random suffix is added). */
  namePrefix?: string;
  /** Send IPv6 router advertisements (default true). */
  routerAdvertisements?: boolean;
  /** Where dnsmasq keeps its (empty) lease file. */
  workDir: string;
}

export interface Subnet {
  network: string;
  prefixLength: number;
  netmask: string;
  /** The bridge's (server's) address: the first host address. */
  address: string;
  /** The second host address: a separate "router" host (proxy-mode tests). */
  routerAddress: string;
  /** A DHCP pool that leaves the low addresses for static use. */
  poolStart: string;
  poolEnd: string;
}

const toInt = (ip: string) => ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const toIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

export function parseSubnet(cidr: string): Subnet {
  const m = /^([0-9.]+)\/(\d+)$/.exec(cidr);
  if (!m || !isIPv4(m[1])) throw new NetworkConfigError(`subnet "${cidr}" must be an IPv4 CIDR such as 10.77.0.0/24`);
  const len = Number(m[2]);
  if (len < 16 || len > 24) throw new NetworkConfigError(`subnet "${cidr}": the prefix length must be between 16 and 24`);
  const size = 2 ** (32 - len);
  const net = toInt(m[1]) - (toInt(m[1]) % size);
  return {
    network: toIp(net),
    prefixLength: len,
    netmask: toIp(2 ** 32 - size),
    address: toIp(net + 1),
    routerAddress: toIp(net + 2),
    poolStart: toIp(net + 100),
    poolEnd: toIp(net + Math.min(size - 2, 249)),
  };
}

export function parseIpv6Prefix(prefix: string): string {
  const m = /^([0-9a-f:]+?)(::)?\/64$/i.exec(prefix);
  if (!m || !/^[0-9a-f]{1,4}(:[0-9a-f]{1,4}){0,3}$/i.test(m[1])) throw new NetworkConfigError(`IPv6 prefix "${prefix}" must be a /64 such as fd77::/64`);
  return `${m[1].toLowerCase()}::1`;
}

export class RigNetwork {
  readonly ns: Netns;
  readonly bridge: string;
  readonly subnet: Subnet;
  readonly ipv6Address: string;
  private tapCount = 0;
  private ra: ChildProcess | undefined;

  private constructor(ns: Netns, bridge: string, subnet: Subnet, ipv6Address: string) {
    this.ns = ns;
    this.bridge = bridge;
    this.subnet = subnet;
    this.ipv6Address = ipv6Address;
  }

  get address(): string {
    return this.subnet.address;
  }

  get name(): string {
    return this.ns.name;
  }

  static async create(opts: RigNetworkOptions): Promise<RigNetwork> {
    const subnet = parseSubnet(opts.subnet ?? '10.77.0.0/24');
    const v6 = parseIpv6Prefix(opts.ipv6Prefix ?? 'fd77::/64');
    const bridge = opts.bridge ?? 'br0';
    const ns = await Netns.create(opts.namePrefix ?? 'zbrig');
    const net = new RigNetwork(ns, bridge, subnet, v6);
    process.on('exit', net.onExit);
    try {
      await net.setUp(opts);
      return net;
    } catch (e) {
      await net.destroy();
      throw e;
    }
  }

  /** If the process ends before destroy(): kill what runs in the namespace and delete it, synchronously. */
  private readonly onExit = () => {
    this.ns.destroySync();
  };

  private async setUp(opts: RigNetworkOptions): Promise<void> {
    const { ns, bridge } = this;
    await ns.ip('link', 'add', bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
    // No duplicate address detection: the bridge's addresses are usable at once (dnsmasq sends RAs from the link-local one).
    await ns.exec('sysctl', ['-qw', `net.ipv6.conf.${bridge}.accept_dad=0`]);
    await ns.ip('addr', 'add', `${this.subnet.address}/${this.subnet.prefixLength}`, 'dev', bridge);
    await ns.ip('addr', 'add', `${this.ipv6Address}/64`, 'dev', bridge, 'nodad');
    // A bridge without a port that has carrier is not RUNNING, and the
    // server cannot see an interface that is not running. A veth pair keeps
    // the bridge up before the first VM opens its tap.
    await ns.ip('link', 'add', 'zbanchor0', 'type', 'veth', 'peer', 'name', 'zbanchor1');
    await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.zbanchor1.disable_ipv6=1']);
    await ns.ip('link', 'set', 'zbanchor0', 'master', bridge);
    await ns.ip('link', 'set', 'zbanchor0', 'up');
    await ns.ip('link', 'set', 'zbanchor1', 'up');
    await ns.ip('link', 'set', bridge, 'up');
    await this.waitForCarrier();
    if (opts.routerAdvertisements !== false) await this.startRouterAdvertisements(opts.workDir);
  }

  /** The bridge reports carrier a moment after it is set up; the server needs it running. */
  private async waitForCarrier(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const out = await this.ns.ip('-br', 'link', 'show', 'dev', this.bridge);
      if (/<[^>]*LOWER_UP[^>]*>/.test(out)) return;
      if (Date.now() > until) throw new NetworkConfigError(`bridge ${this.bridge} in ${this.ns.name} has no carrier after ${timeoutMs} ms: ${out.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async startRouterAdvertisements(workDir: string): Promise<void> {
    this.ra = this.ns.spawn('dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--log-facility=-', '--port=0', '--pid-file=',
      '--bind-interfaces', `--interface=${this.bridge}`,
      '--enable-ra', `--dhcp-range=::,constructor:${this.bridge},ra-only`,
      `--dhcp-leasefile=${path.join(workDir, 'ra.leases')}`,
    ]);
    await waitForOutput(this.ra, /router advertisement on/, 10_000);
  }

  /** Pid of the router-advertisement daemon, for the rig's state file. */
  get pids(): number[] {
    return this.ra?.pid ? [this.ra.pid] : [];
  }

  /** A new tap joined to the bridge (names are unique within the rig). */
  async addTap(): Promise<string> {
    const name = `zbtap${this.tapCount++}`;
    return this.ns.tap(this.bridge, name);
  }

  async removeTap(name: string): Promise<void> {
    await this.ns.ip('link', 'del', name).catch(() => undefined);
  }

  /** Kills everything in the namespace by pid and deletes it. */
  async destroy(): Promise<void> {
    await this.ns.destroy();
    process.off('exit', this.onExit);
  }
}
