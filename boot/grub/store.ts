// The TFTP store GRUB reads through: `<prefix>/grub.cfg` and the per-MAC
// `<prefix>/grub.cfg-<mac>` are rendered from the machine selection at
// request time (like the iPXE script over HTTP); every other path goes to
// the store underneath (the iPXE binaries and the mounts: shim, GRUB, the
// kernel and initrds). Like the iPXE script, the command line gains
// `zeroboot.server=<base>`, so a node on the signed chain knows where its
// agent reports (the HTTP port is not guessable from DHCP).
import { memoryEntry, cleanPath, StoreNotFoundError } from '../store.ts';
import { macFromBootif, normalizeMac } from '../../lib/mac.ts';
import type { MachineLabels } from '../machine-labels.ts';
import type { ImageStore, StoreEntry } from '../store.ts';
import { NoProfileError } from '../selection.ts';
import type { Selector } from '../selection.ts';
import type { BootTimeline } from '../timeline.ts';
import type { Logger } from '../log.ts';
import { FLOOD_LOG_EVERY_MS, LogThrottle } from '../../lib/log-throttle.ts';
import { CmdlineError } from '../../lib/cmdline.ts';
import { withServer } from '../../lib/cmdline.ts';
import { GrubValueError, MACHINE_CONFIG_PREFIX, renderGrubChain, renderGrubError, renderGrubMachineConfig } from './config.ts';

const CHAIN = /(^|\/)grub\/grub\.cfg$/;
const MACHINE = new RegExp(`(^|/)grub/${MACHINE_CONFIG_PREFIX.replace(/\./g, '\\.')}([^/]+)$`);

export class GrubConfigStore implements ImageStore {
  private readonly inner: ImageStore;
  private readonly selector: Selector;
  private readonly timeline: BootTimeline;
  private readonly log: Logger;
  /** Any client can ask for a machine's configuration. */
  private readonly logThrottle = new LogThrottle(FLOOD_LOG_EVERY_MS);
  private readonly labels: MachineLabels;
  private readonly serverBase: () => string | undefined;

  /** `serverBase`: the node-facing HTTP base once HTTP listens (undefined before: no zeroboot.server then). */
  constructor(opts: { inner: ImageStore; selector: Selector; labels: MachineLabels; timeline: BootTimeline; log: Logger; serverBase?: () => string | undefined }) {
    this.inner = opts.inner;
    this.serverBase = opts.serverBase ?? (() => undefined);
    this.labels = opts.labels;
    this.selector = opts.selector;
    this.timeline = opts.timeline;
    this.log = opts.log;
  }

  async open(virtualPath: string): Promise<StoreEntry> {
    const clean = cleanPath(virtualPath);
    if (CHAIN.test(clean)) return memoryEntry(clean, Buffer.from(renderGrubChain()));
    const m = MACHINE.exec(clean);
    if (!m) return this.inner.open(virtualPath);
    // GRUB asks with $net_default_mac (colons); a GRUB searching on its own asks "01-<mac with dashes>", then IP names
    const mac = macFromBootif(m[2]) ?? normalizeMac(m[2]);
    if (!mac) throw new StoreNotFoundError(`not found: ${clean} (no MAC in the name)`);
    try {
      // the labels DHCP (UUID, architecture) or iPXE reported, so GRUB boots the profile DHCP chose shim for
      const selection = this.selector.select({ ...this.labels.get(mac), arch: 'x86_64', mac });
      const base = this.serverBase();
      const args = base === undefined ? selection.args : withServer(selection.args, selection.profile.cmdline, base);
      const text = renderGrubMachineConfig({ profile: selection.profile, args, mac, group: selection.group, reason: selection.reason });
      this.timeline.record(mac, 'grub.config', { profile: selection.profile.name, ...(selection.group ? { group: selection.group } : {}), selection: selection.reason });
      return memoryEntry(clean, Buffer.from(text));
    } catch (e) {
      if (!(e instanceof NoProfileError || e instanceof CmdlineError || e instanceof GrubValueError)) throw e;
      // GRUB shows a TFTP error as a code; a configuration can say why on the console.
      this.timeline.record(mac, 'grub.error', { path: clean }, e.message);
      const count = this.logThrottle.note('no configuration');
      if (count !== undefined) this.log.warn('no GRUB configuration for machine', { mac, error: e.message, count });
      return memoryEntry(clean, Buffer.from(renderGrubError(e.message)));
    }
  }
}
