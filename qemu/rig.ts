// The QEMU rig as a library: a private network, `zeroboot serve` inside it,
// and VMs from hardware profiles whose serial consoles are captured. Every
// process is started by the rig and killed by pid; stop() also runs on
// process exit and (by default) on SIGINT/SIGTERM, so a failing test or a
// Ctrl-C leaves no namespace, tap or QEMU behind.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { BootEvent, BootEventKind } from '../boot/timeline.ts';
import { missingSignedLoaders } from '../lib/loaders.ts';
import type { MachineView } from '../boot/http/api.ts';
import type { DhcpMode } from '../boot/config.ts';
import { SERVE_NODE_FLAGS } from '../boot/runtime-flags.ts';
import { GONE_WAIT_MS } from './netns.ts';
import type { Netns } from './netns.ts';
import { killPid, sh, waitForOutput, waitUntilGoneSync } from '../lib/process.ts';
import { RigNetwork } from './network.ts';
import type { RigNetworkOptions } from './network.ts';
import { instanceOf, loadProfile, DEFAULT_PROFILES_DIR } from './profile.ts';
import type { Firmware, HwProfile, Instance } from './profile.ts';
import { qemuArgs, varsTemplate, QEMU_BINARY } from './args.ts';
import type { BootMedium, DiskFile } from './args.ts';
import { chooseAccel } from './kvm-probe.ts';
import type { Accel, AccelMode } from './kvm-probe.ts';
import { SerialConsole } from './console.ts';
import { publishConsole } from './console-publish.ts';
import { startPortBridge } from './port-bridge.ts';
import type { PortBridge } from './port-bridge.ts';
import { CONSOLE_SOCKET } from '../boot/http/console-hub.ts';
import { writeRigState } from './rig-state.ts';
import { MARKERS } from '../image/init.ts';
import { AGENT_MARKERS } from '../image/init-services.ts';
import type { RigState } from './rig-state.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export class RigError extends Error {}

type Doc = Record<string, unknown>;

export interface RigOptions {
  /** Server configuration (object or YAML) laid over the rig's; the rig always sets the address and interface. */
  serverConfig?: Doc | string;
  /** A built image (vmlinuz, initramfs.img), served as store prefix `image/`. */
  imageDir?: string;
  /** full: our server hands out addresses; proxy: dnsmasq does, our server answers PXE only; off: no DHCP from the rig. */
  dhcp?: DhcpMode;
  /**
   * Proxy mode only: the address server is a separate host on the bridge
   * (the subnet's second address), like a farmer's router, rather than
   * dnsmasq on the server's own address. `nextServer` says whom its answers
   * name as next-server (BOOTP siaddr): itself, as a router does, or us.
   */
  router?: { nextServer: 'router' | 'zeroboot' };
  /** Kernel arguments added to the rig's default profile (for example the image's power-off flag). */
  kernelArgs?: Record<string, string | number | null>;
  /**
   * The default profile boots UEFI x64 PXE nodes through the signed chain
   * (shim -> GRUB -> kernel), as Secure Boot nodes need; the image must have
   * been built with `secureBoot: true` (shimx64.efi and grubx64.efi).
   */
  secureBoot?: boolean;
  /** Keep console logs and the server log here (kept after stop); default: inside the work dir (removed). */
  logDir?: string;
  kvm?: AccelMode;
  /** Start `zeroboot serve` (default true); false leaves the network to the caller (reference servers). */
  server?: boolean;
  subnet?: string;
  ipv6Prefix?: string;
  profilesDir?: string;
  /** Write the rig's state here so `zeroboot qemu down` can clean up after a crash. */
  stateFile?: string;
  /** Install SIGINT/SIGTERM handlers that stop the rig and exit (default true). */
  handleSignals?: boolean;
  /** Every line the server logs. */
  onServerLog?: (line: string) => void;
  /** Server profiles added to the rig's own (which `serverConfig.profiles` would replace), e.g. one for machines made to fail. */
  extraProfiles?: Doc[];
}

export interface BootOptions {
  count?: number;
  /** Boot through the firmware's own PXE (no iPXE option ROM on the NICs). */
  noIpxeRom?: boolean;
  firmware?: Firmware;
  /**
   * Existing disk files, one per profile disk, used instead of fresh ones
   * and left in place when the VM goes (a second boot on the same disk,
   * after a power cut). QEMU opens them with cache=writeback, so what the
   * guest flushed is in the file.
   */
  diskFiles?: string[];
  /**
   * Boot this instance of the profile again (its MACs, name and folder)
   * instead of a new one: a reboot of the same machine, whose previous VM
   * must have been stopped. Needs count 1.
   */
  instance?: number;
  /** Boot from a CD, a USB stick or an EFI program instead of the network (see BootMedium). */
  medium?: BootMedium;
}

/** What busybox prints when /init, its steps done, starts the console shell. */
const SHELL_BANNER = /built-in shell \(ash\)/;

/** What GET /api/nodes/<id> returns: the registry's summary, the node's key and its last signed report's payload. */
export interface NodeView {
  nodeId: string;
  macs: string[];
  diskless: boolean;
  firstSeen: string;
  lastReport: string;
  reports: number;
  capacity?: Record<string, unknown>;
  publicKey: string;
  report: Record<string, unknown>;
}

/** What GET /api/machines/<mac> returns. */
export type MachineTimeline = MachineView & { timeline: BootEvent[] };

export class Vm {
  readonly name: string;
  readonly instance: Instance;
  readonly macs: string[];
  readonly taps: string[];
  readonly args: string[];
  readonly console: SerialConsole;
  /** When QEMU was started (ms since the epoch), for boot-time measurements. */
  readonly startedAt: number;
  /** "ok" once the rig's server holds this VM's console for its dashboard, else why not. */
  published: Promise<string> = Promise.resolve('no server in the rig');
  private readonly network: RigNetwork;

  constructor(instance: Instance, taps: string[], args: string[], console: SerialConsole, network: RigNetwork, startedAt: number) {
    this.name = instance.name;
    this.instance = instance;
    this.macs = instance.macs;
    this.taps = taps;
    this.args = args;
    this.console = console;
    this.network = network;
    this.startedAt = startedAt;
  }

  get pid(): number {
    return this.console.pid;
  }

  /** The MAC of the NIC the profile boots from (the first, unless a profile marks another `boot`). */
  get mac(): string {
    return this.instance.bootMac;
  }

  /** Kills QEMU (by pid) and removes its taps. */
  async stop(): Promise<void> {
    await this.console.stop();
    for (const t of this.taps) await this.network.removeTap(t);
  }
}

function isDoc(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; lists and scalars from `over` replace. */
export function mergeDocs(base: Doc, over: Doc): Doc {
  const out: Doc = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isDoc(v) && isDoc(out[k]) ? mergeDocs(out[k] as Doc, v) : v;
  return out;
}

/**
 * The server configuration for a rig: the rig's defaults, the caller's config over them, the network facts last.
 * With `layers` (the image has at: boot layers: <name>.fl and chunks/ beside it) the server offers the image
 * folder's flists and chunks (key `flists`), and the profile tells /init where the server is (zeroboot.server).
 */
export function rigServerConfig(opts: { address: string; bridge: string; pool: { start: string; end: string; netmask: string }; stateDir: string; imageDir: string; dhcp?: DhcpMode; kernelArgs?: Record<string, string | number | null>; secureBoot?: boolean; serverConfig?: Doc | string; layers?: boolean; extraProfiles?: Doc[] }): Doc {
  let user: Doc = {};
  if (typeof opts.serverConfig === 'string') {
    const parsed = parseYaml(opts.serverConfig) as unknown;
    if (parsed !== null && parsed !== undefined && !isDoc(parsed)) throw new RigError('serverConfig must be a YAML mapping');
    user = (parsed as Doc | null) ?? {};
  } else if (opts.serverConfig) {
    user = opts.serverConfig;
  }
  const port = ((user.server as Doc | undefined)?.http as Doc | undefined)?.port ?? 8080;
  const base: Doc = {
    ...(opts.layers ? { flists: { dir: opts.imageDir, store: `dir://${path.join(opts.imageDir, 'chunks')}` } } : {}),
    server: {
      stateDir: opts.stateDir,
      dhcp: { mode: 'full' },
      http: { port: 8080 },
      tftp: { port: 69 },
      ipxeDir: '/usr/lib/ipxe',
    },
    profiles: [
      {
        name: 'zos',
        kernel: 'image/vmlinuz',
        initrd: 'image/initramfs.img',
        // no_timer_check: under TCG on a loaded host the kernel's IO-APIC
        // timer self-test can miss its window and panic ("IO-APIC + timer
        // doesn't work!"); the emulated timer is fine, the check is not.
        args: { console: 'ttyS0', runmode: 'test', version: 'v3', no_timer_check: null, ...(opts.layers ? { 'zeroboot.server': `http://${opts.address}:${String(port)}` } : {}), ...opts.kernelArgs },
        // UEFI x64 PXE nodes take the signed chain (shim and GRUB from the image).
        ...(opts.secureBoot ? { secureBoot: true } : {}),
      },
    ],
    groups: [{ name: 'default', profile: 'zos', selector: {} }],
  };
  const doc = mergeDocs(base, user);
  if (opts.extraProfiles) doc.profiles = [...(doc.profiles as Doc[]), ...opts.extraProfiles];
  const server = doc.server as Doc;
  server.address = opts.address;
  server.interfaces = [opts.bridge];
  const dhcp = { ...(server.dhcp as Doc) };
  if (opts.dhcp) dhcp.mode = opts.dhcp;
  if (dhcp.mode === 'full' && dhcp.pool === undefined) {
    dhcp.pool = { start: opts.pool.start, end: opts.pool.end, subnetMask: opts.pool.netmask, router: opts.address, dns: [opts.address], leaseSeconds: 600 };
  }
  server.dhcp = dhcp;
  const store = Array.isArray(doc.store) ? [...(doc.store as Doc[])] : [];
  if (!store.some((m) => isDoc(m) && m.prefix === 'image')) store.push({ prefix: 'image', dir: opts.imageDir });
  doc.store = store;
  return doc;
}

export class Rig {
  readonly network: RigNetwork;
  readonly accel: Accel;
  /** Why this accelerator was chosen. */
  readonly accelReason: string;
  readonly workDir: string;
  readonly logDir: string;
  /** Where the server's HTTP answers, as seen from inside the namespace. */
  serverUrl = '';
  /** The server's JSON API (its management listener, loopback inside the namespace by default). */
  apiUrl = '';
  /** The API's bearer token, when the server's configuration asks for one. */
  private apiToken: string | undefined;
  /** Where the rig's server takes VM consoles for its dashboard (console-hub.ts); unset without a server. */
  private consoleSocket: string | undefined;
  private readonly bridges: PortBridge[] = [];
  private readonly opts: RigOptions;
  private readonly profilesDir: string;
  private readonly instances = new Map<string, number>();
  private readonly vmList: Vm[] = [];
  private server: ChildProcess | undefined;
  private dnsmasq: ChildProcess | undefined;
  private serverLog: WriteStream | undefined;
  private stopping: Promise<void> | undefined;
  private readonly onExit = () => this.stopSync();
  private readonly onSignal = (sig: NodeJS.Signals) => {
    void this.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };

  private constructor(network: RigNetwork, accel: { accel: Accel; reason: string }, workDir: string, logDir: string, opts: RigOptions) {
    this.network = network;
    this.accel = accel.accel;
    this.accelReason = accel.reason;
    this.workDir = workDir;
    this.logDir = logDir;
    this.opts = opts;
    this.profilesDir = opts.profilesDir ?? DEFAULT_PROFILES_DIR;
  }

  get ns(): Netns {
    return this.network.ns;
  }

  /** The server's (bridge's) IPv4 address. */
  get address(): string {
    return this.network.address;
  }

  get vms(): readonly Vm[] {
    return this.vmList;
  }

  static async start(opts: RigOptions = {}): Promise<Rig> {
    const accel = await chooseAccel(opts.kvm ?? 'auto');
    const workDir = await mkdtemp(path.join(tmpdir(), 'zeroboot-rig-'));
    const logDir = opts.logDir ?? path.join(workDir, 'logs');
    await mkdir(logDir, { recursive: true });
    const netOpts: RigNetworkOptions = { subnet: opts.subnet, ipv6Prefix: opts.ipv6Prefix, workDir };
    let network: RigNetwork;
    try {
      network = await RigNetwork.create(netOpts);
    } catch (e) {
      await rm(workDir, { recursive: true, force: true });
      throw e;
    }
    const rig = new Rig(network, accel, workDir, logDir, opts);
    process.on('exit', rig.onExit);
    if (opts.handleSignals !== false) {
      process.on('SIGINT', rig.onSignal);
      process.on('SIGTERM', rig.onSignal);
    }
    try {
      const mode = rig.dhcpMode();
      if (mode === 'proxy') await rig.startAddressDhcp();
      if (opts.server !== false) await rig.startServer();
      await rig.saveState();
      return rig;
    } catch (e) {
      await rig.stop();
      throw e;
    }
  }

  private dhcpMode(): DhcpMode {
    if (this.opts.dhcp) return this.opts.dhcp;
    const cfg = typeof this.opts.serverConfig === 'string' ? (parseYaml(this.opts.serverConfig) as Doc | null) : this.opts.serverConfig;
    const mode = (((cfg?.server as Doc | undefined)?.dhcp as Doc | undefined)?.mode as DhcpMode | undefined) ?? 'full';
    return mode;
  }

  /** dnsmasq handing out addresses only, next to our proxyDHCP. */
  private async startAddressDhcp(): Promise<void> {
    const s = this.network.subnet;
    const router = this.opts.router;
    // a router is its own host on the bridge; otherwise dnsmasq shares the server's address
    const host = router ? await this.ns.host(this.network.bridge, { cidr: `${s.routerAddress}/${s.prefixLength}` }) : this.ns;
    const iface = router ? 'eth0' : this.network.bridge;
    this.dnsmasq = host.spawn('dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--log-facility=-', '--port=0', '--pid-file=',
      '--bind-interfaces', `--interface=${iface}`,
      `--dhcp-range=${s.poolStart},${s.poolEnd},${s.netmask},10m`, '--no-ping', '--log-dhcp',
      `--dhcp-leasefile=${path.join(this.workDir, 'dnsmasq.leases')}`,
      ...(router ? [`--dhcp-option=3,${s.routerAddress}`] : []),
      ...(router?.nextServer === 'zeroboot' ? [`--dhcp-boot=,,${s.address}`] : []),
    ]);
    const log = createWriteStream(path.join(this.logDir, 'dnsmasq.log'));
    this.dnsmasq.stdout!.pipe(log);
    this.dnsmasq.stderr!.pipe(log);
    await waitForOutput(this.dnsmasq, new RegExp(`DHCP, sockets bound exclusively to interface ${iface}`), 10_000);
  }

  private async startServer(): Promise<void> {
    const s = this.network.subnet;
    const imageDir = this.opts.imageDir ?? path.join(this.workDir, 'no-image');
    await mkdir(imageDir, { recursive: true });
    if (this.opts.secureBoot) {
      const missing = missingSignedLoaders(imageDir);
      if (missing.length > 0) throw new RigError(`secureBoot needs an image built with "secureBoot: true": ${imageDir} has no ${missing.join(' or ')}`);
    }
    const doc = rigServerConfig({
      address: s.address,
      bridge: this.network.bridge,
      pool: { start: s.poolStart, end: s.poolEnd, netmask: s.netmask },
      stateDir: path.join(this.workDir, 'server-state'),
      imageDir: path.resolve(imageDir),
      dhcp: this.dhcpMode(),
      kernelArgs: this.opts.kernelArgs,
      secureBoot: this.opts.secureBoot,
      serverConfig: this.opts.serverConfig,
      layers: existsSync(path.join(imageDir, 'chunks')),
      extraProfiles: this.opts.extraProfiles,
    });
    const file = path.join(this.workDir, 'zeroboot.yaml');
    await writeFile(file, toYaml(doc));
    this.consoleSocket = path.join(path.resolve(this.workDir, String((doc.server as Doc).stateDir)), CONSOLE_SOCKET);
    this.server = this.ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...SERVE_NODE_FLAGS, path.join(ROOT, 'cli/zeroboot.ts'), 'serve', '--config', file]);
    this.serverLog = createWriteStream(path.join(this.logDir, 'server.log'));
    let partial = '';
    const onData = (d: Buffer) => {
      this.serverLog?.write(d);
      if (!this.opts.onServerLog) return;
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) this.opts.onServerLog(l);
    };
    this.server.stdout!.on('data', onData);
    this.server.stderr!.on('data', onData);
    const listening = await waitForOutput(this.server, /zeroboot serve: listening\nhttp +\S+\napi +.*\n/, 30_000).catch((e: Error) => {
      throw new RigError(`zeroboot serve did not start in namespace ${this.ns.name}: ${e.message.split('\n').slice(0, 3).join(' ')}`);
    });
    this.serverUrl = /http +(\S+)/.exec(listening)![1];
    const api = /\napi +(http\S+)(?: +\(bearer token in (\S+)\))?/.exec(listening);
    this.apiUrl = api?.[1] ?? '';
    if (api?.[2]) this.apiToken = (await readFile(api[2], 'utf8')).trim();
  }

  private pids(): number[] {
    const out = [...this.network.pids, ...this.vmList.map((v) => v.pid)];
    if (this.server?.pid) out.push(this.server.pid);
    if (this.dnsmasq?.pid) out.push(this.dnsmasq.pid);
    return out;
  }

  private async saveState(): Promise<void> {
    if (!this.opts.stateFile) return;
    const state: RigState = {
      namespace: this.ns.name,
      ownerPid: process.pid,
      pids: this.pids(),
      workDir: this.workDir,
      logDir: this.logDir,
      serverUrl: this.serverUrl || undefined,
      startedAt: new Date().toISOString(),
    };
    await writeRigState(this.opts.stateFile, state);
  }

  /** The server's dashboard (inside the namespace), with the token to open it when the server asks for one. */
  get dashboardUrl(): string {
    if (!this.apiUrl) return '';
    return this.apiUrl.replace(/\/api$/, '/dashboard/') + (this.apiToken ? `?token=${this.apiToken}` : '');
  }

  /**
   * The dashboard from the host: the management listener (the namespace's
   * loopback) forwarded to 127.0.0.1:<port> on the host (0: any free port)
   * through a socket in the rig's work folder; its URL, with the token.
   */
  async forwardDashboard(port = 0): Promise<string> {
    if (!this.apiUrl) throw new RigError("this rig's server has no management listener");
    const target = new URL(this.apiUrl);
    const bridge = await startPortBridge(this.ns, { host: target.hostname.replace(/^\[|\]$/g, ''), port: Number(target.port) }, path.join(this.workDir, `bridge-${this.bridges.length}.sock`), port);
    this.bridges.push(bridge);
    return `http://127.0.0.1:${bridge.port}/dashboard/` + (this.apiToken ? `?token=${this.apiToken}` : '');
  }

  /** Loads a profile by name from the rig's profile folder. */
  profile(name: string): Promise<HwProfile> {
    return loadProfile(name, this.profilesDir);
  }

  /**
   * Starts `count` VMs of a profile (default 1), each with its own taps,
   * disks, firmware variables and console log. Instance numbers continue
   * across calls, so MACs stay distinct within the rig.
   */
  async boot(profileRef: string | HwProfile, opts: BootOptions = {}): Promise<Vm[]> {
    if (this.stopping) throw new RigError('the rig is stopped');
    const profile = typeof profileRef === 'string' ? await this.profile(profileRef) : profileRef;
    const count = opts.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 32) throw new RigError(`count must be an integer between 1 and 32, got ${count}`);
    if (opts.instance !== undefined) {
      if (count !== 1) throw new RigError('boot: instance goes with count 1');
      const again = instanceOf(profile, opts.instance).name;
      if (this.vmList.some((v) => v.name === again && v.console.running)) throw new RigError(`boot: ${again} is still running; stop it before booting it again`);
    }
    const started: Vm[] = [];
    for (let k = 0; k < count; k++) {
      const index = opts.instance ?? this.instances.get(profile.name) ?? 0;
      this.instances.set(profile.name, Math.max(index + 1, this.instances.get(profile.name) ?? 0));
      started.push(await this.startVm(instanceOf(profile, index), opts));
    }
    await this.saveState();
    return started;
  }

  private async startVm(instance: Instance, opts: BootOptions): Promise<Vm> {
    const dir = path.join(this.workDir, 'vms', instance.name);
    await mkdir(dir, { recursive: true });
    const firmware = opts.firmware ?? instance.profile.firmware;
    const disks: DiskFile[] = [];
    if (opts.diskFiles && opts.diskFiles.length !== instance.profile.disks.length) {
      throw new RigError(`${instance.name}: the profile has ${instance.profile.disks.length} disk(s) but ${opts.diskFiles.length} disk file(s) were given`);
    }
    for (const [i, spec] of instance.profile.disks.entries()) {
      if (opts.diskFiles) {
        disks.push({ path: path.resolve(opts.diskFiles[i]), spec, cache: 'writeback' });
        continue;
      }
      const file = path.join(dir, `disk${i}.${spec.format}`);
      // Sparse (raw) or empty qcow2: a "32G" disk costs nothing until written.
      await sh('qemu-img', ['create', '-q', '-f', spec.format, file, String(spec.sizeBytes)]);
      disks.push({ path: file, spec });
    }
    const template = varsTemplate(firmware);
    let varsFile: string | undefined;
    if (template) {
      varsFile = path.join(dir, 'OVMF_VARS.fd');
      await copyFile(template, varsFile);
    }
    const taps: string[] = [];
    for (let i = 0; i < instance.profile.nics.length; i++) taps.push(await this.network.addTap());
    const args = qemuArgs({ instance, taps, disks, varsFile, accel: this.accel, noIpxeRom: opts.noIpxeRom, firmware, medium: opts.medium && { ...opts.medium, path: path.resolve(opts.medium.path) } });
    await writeFile(path.join(dir, 'qemu.argv'), [QEMU_BINARY, ...args].join('\n') + '\n');
    const startedAt = Date.now();
    // `ip netns exec` execs QEMU in place: the pty's pid is QEMU's pid.
    const console = SerialConsole.spawn('ip', ['netns', 'exec', this.ns.name, QEMU_BINARY, ...args], {
      logPath: path.join(this.logDir, `${instance.name}.log`),
      name: instance.name,
    });
    const vm = new Vm(instance, taps, args, console, this.network, startedAt);
    this.vmList.push(vm);
    // The server's dashboard shows the console live; a server without consoles leaves the VM as it is.
    if (this.consoleSocket) vm.published = publishConsole(console, this.consoleSocket, { name: instance.name, macs: instance.macs }).result;
    return vm;
  }

  /** GET a path of the server's JSON API (its management listener) from inside the namespace; undefined on 404. */
  async api<T>(apiPath: string, timeoutMs = 5_000): Promise<T | undefined> {
    const { status, body } = await this.apiRequest('GET', apiPath, undefined, timeoutMs);
    if (status === 404) return undefined;
    if (status !== 200) throw new RigError(`GET /api${apiPath}: status ${status}: ${body.slice(0, 200)}`);
    return JSON.parse(body) as T;
  }

  /** POST a JSON body to a path of the server's JSON API from inside the namespace; the status and the parsed answer. */
  async apiPost<T>(apiPath: string, body: unknown, timeoutMs = 60_000): Promise<{ status: number; answer: T }> {
    const r = await this.apiRequest('POST', apiPath, JSON.stringify(body), timeoutMs);
    return { status: r.status, answer: JSON.parse(r.body) as T };
  }

  /** One request to the JSON API with curl inside the namespace (with the token when there is one); no answer is an error. */
  private async apiRequest(method: 'GET' | 'POST', apiPath: string, json: string | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
    if (!this.apiUrl) throw new RigError(this.serverUrl ? "this rig's server has its management API turned off" : 'this rig runs no zeroboot server');
    const auth = this.apiToken ? ['-H', `Authorization: Bearer ${this.apiToken}`] : [];
    const send = json === undefined ? [] : ['-H', 'Content-Type: application/json', '--data-binary', '@-'];
    const args = ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...auth, ...send, '-w', '\n%{http_code}', `${this.apiUrl}${apiPath}`];
    const r = await this.ns.exec('curl', args, { ...(json === undefined ? {} : { input: json }), timeout: timeoutMs + 5000 });
    const nl = r.stdout.lastIndexOf('\n');
    const status = Number(r.stdout.slice(nl + 1));
    if (!status) throw new RigError(`${method} /api${apiPath}: ${r.stderr.trim()}`);
    return { status, body: r.stdout.slice(0, nl) };
  }

  /** Every machine the server has seen (GET /api/machines?view=full, page by page). */
  async machines(): Promise<MachineView[]> {
    const out: MachineView[] = [];
    let cursor: string | null = null;
    do {
      const page: { machines: MachineView[]; next: string | null } | undefined = await this.api(`/machines?view=full&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      out.push(...(page?.machines ?? []));
      cursor = page?.next ?? null;
    } while (cursor);
    return out;
  }

  /** The server's record for a MAC (GET /api/machines/<mac> from inside the namespace); undefined when it has none. */
  async timeline(mac: string): Promise<MachineTimeline | undefined> {
    return this.api<MachineTimeline>(`/machines/${encodeURIComponent(mac)}`);
  }

  /** Polls the timeline until an event of `kind` (or matching the predicate) shows up. */
  async waitForEvent(mac: string, match: BootEventKind | ((e: BootEvent) => boolean), timeoutMs: number): Promise<BootEvent> {
    const test = typeof match === 'string' ? (e: BootEvent) => e.kind === match : match;
    const until = Date.now() + timeoutMs;
    let last: MachineTimeline | undefined;
    for (;;) {
      last = await this.timeline(mac);
      const hit = last?.timeline.find(test);
      if (hit) return hit;
      if (Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const seen = last?.timeline.map((e) => e.kind + (e.reason ? `(${e.reason})` : '')).join(', ') || 'nothing';
    throw new RigError(`${mac}: no ${typeof match === 'string' ? match : 'matching'} event within ${timeoutMs} ms; the server saw: ${seen}`);
  }

  /**
   * Waits until the agent on `vm` has had a report accepted by the server
   * (its console line `ZEROBOOT-AGENT node=<id> report=accepted n=<k>`, seen
   * after console position `from`, default the start), then reads the
   * node's record from the registry (GET /api/nodes/<id>). A failure marker
   * or the agent's exit ends the wait at once, with the console's tail.
   */
  async waitForReport(vm: Vm, timeoutMs: number, opts: { from?: number } = {}): Promise<NodeView> {
    const until = Date.now() + timeoutMs;
    let hit = await vm.console.waitFor(new RegExp(`${AGENT_MARKERS.accepted.source}|${AGENT_MARKERS.exit.source}|${MARKERS.fail.source}|${SHELL_BANNER.source}`), timeoutMs, opts);
    if (SHELL_BANNER.test(hit[0])) {
      // /init starts its console shell after every step: no agent by then means none is coming.
      if (!AGENT_MARKERS.start.test(vm.console.log())) throw new RigError(`${vm.name}: /init reached its console shell without starting the agent (does the image carry \`zeroboot agent\`? is zeroboot.agent=off set?)`);
      hit = await vm.console.waitFor(new RegExp(`${AGENT_MARKERS.accepted.source}|${AGENT_MARKERS.exit.source}|${MARKERS.fail.source}`), Math.max(1, until - Date.now()), opts);
    }
    const m = AGENT_MARKERS.accepted.exec(hit[0]);
    if (!m) throw new RigError(`${vm.name}: ${hit[0].trim()}; the console's last lines:\n${vm.console.tail(1500)}`);
    const node = await this.node(m[1]);
    if (!node) throw new RigError(`${vm.name}: the console says report ${m[2]} of node ${m[1]} was accepted, but the server has no such node`);
    return node;
  }

  /** The registry's record of a node (GET /api/nodes/<id>); undefined when it has none. */
  node(nodeId: string): Promise<NodeView | undefined> {
    return this.api<NodeView>(`/nodes/${encodeURIComponent(nodeId)}`);
  }

  /** Stops every VM, the server and dnsmasq (by pid), deletes the namespace and the work files. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    await Promise.all(this.bridges.map((b) => b.close().catch(() => undefined)));
    await Promise.all(this.vmList.map((v) => v.console.stop(2000).catch(() => undefined)));
    if (this.server?.pid && this.server.exitCode === null) {
      const exited = new Promise((r) => this.server!.once('exit', r));
      killPid(this.server.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    }
    await this.network.destroy();
    await new Promise<void>((r) => (this.serverLog ? this.serverLog.end(() => r()) : r()));
    if (this.opts.stateFile) await rm(this.opts.stateFile, { force: true });
    // Logs the caller asked for live outside the work dir and stay.
    await rm(this.workDir, { recursive: true, force: true });
    process.off('exit', this.onExit);
  }

  /** Last-chance cleanup when the process exits without stop(): synchronous, by pid. */
  private stopSync(): void {
    waitUntilGoneSync(this.pids().filter((pid) => killPid(pid)), GONE_WAIT_MS);
    this.ns.destroySync();
    try {
      rmSync(this.workDir, { recursive: true, force: true });
      if (this.opts.stateFile) rmSync(this.opts.stateFile, { force: true });
    } catch {}
  }
}

/** Starts a rig: network, (optionally) proxy-mode dnsmasq, and `zeroboot serve`. */
export function startRig(opts: RigOptions = {}): Promise<Rig> {
  return Rig.start(opts);
}
