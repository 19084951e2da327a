// "Why didn't it boot?": from what the server saw of one machine (its
// timeline, and when its node last reported), the stage it reached and, when
// it stopped progressing, the likely cause from a table of known quirks of
// PXE ROMs, iPXE, GRUB and images, with what to do about it. Pure: the
// clock and the thresholds come in.
import type { BootEvent } from './timeline.ts';

export type QuirkId =
  | 'proxy-ignored'
  | 'chainload-loop'
  | 'grub-wrong-server'
  | 'stuck-in-image'
  | 'download-failed'
  | 'tftp-failed'
  | 'offer-not-taken'
  | 'dhcp-ignored';

export interface Quirk {
  id: QuirkId;
  title: string;
  /** What the server saw that points at it. */
  explanation: string;
  advice: string;
}

export type BootStage = 'dhcp' | 'loader' | 'ipxe' | 'script' | 'kernel' | 'initrd' | 'reported';

export interface Diagnosis {
  stage: BootStage | 'unknown';
  /** progressing: the last event is recent; stopped: it is not, and `cause` says why if the table knows. */
  state: 'progressing' | 'stopped' | 'reported';
  cause?: Quirk;
  /** The events the cause was read from. */
  evidence: BootEvent[];
  /** The node's last console lines, when the machine is a rig VM the server was told about. */
  console?: string[];
}

export interface DiagnosisInput {
  events: BootEvent[];
  /** When this machine's node last sent an accepted report (ms), if ever. */
  reportedAt?: number;
  now: number;
  /** Silence after which a machine that has not reported counts as stopped. */
  quietMs: number;
  /** How long after its initrd a node may take to boot and report. */
  reportMs: number;
  console?: string[];
}

export const DEFAULT_QUIET_MS = 30_000;
export const DEFAULT_REPORT_MS = 180_000;

/** iPXE binaries a ROM chainloads; asked for twice with no script between = a loop. */
const IPXE_LOADER = /(^|\/)(undionly\.kpxe|undionly\.kkpxe|ipxe\.pxe|ipxe\.efi|snponly\.efi|snp\.efi|ipxe\.lkrn)$/;

const at = (e: BootEvent) => Date.parse(e.time);
const isProxyOffer = (e: BootEvent) => e.kind === 'dhcp.offer' && e.detail?.ip === undefined && e.detail?.bootfile !== undefined;

function stageOf(events: BootEvent[], reported: boolean): BootStage | 'unknown' {
  if (reported) return 'reported';
  let stage: BootStage | 'unknown' = 'unknown';
  for (const e of events) {
    if (e.kind.startsWith('dhcp.')) stage = e.detail?.ipxe ? 'ipxe' : stage === 'unknown' || stage === 'dhcp' ? 'dhcp' : stage;
    else if (e.kind === 'tftp.done' || e.kind === 'grub.config') stage = 'loader';
    else if (e.kind === 'http.script') stage = 'script';
    else if (e.kind === 'http.kernel') stage = 'kernel';
    else if (e.kind === 'http.initrd') stage = 'initrd';
  }
  return stage;
}

/**
 * The events of the machine's latest boot attempt: from the first DISCOVER
 * sent by firmware (not iPXE) since it last got as far as HTTP. A ROM that
 * loops sends a new DISCOVER each round, so all rounds stay in view; a
 * machine that rebooted after fetching its image starts a new attempt.
 */
function lastAttempt(events: BootEvent[]): BootEvent[] {
  const firmwareDiscover = (e: BootEvent) => e.kind === 'dhcp.discover' && !e.detail?.ipxe;
  let last = -1;
  for (let i = events.length - 1; i >= 0 && last < 0; i--) if (firmwareDiscover(events[i])) last = i;
  if (last < 0) return events;
  let progress = -1;
  for (let i = last - 1; i >= 0 && progress < 0; i--) if (events[i].kind.startsWith('http.')) progress = i;
  for (let i = progress + 1; i <= last; i++) if (firmwareDiscover(events[i])) return events.slice(i);
  return events.slice(last);
}

const QUIRKS: ((ev: BootEvent[], input: DiagnosisInput) => { quirk: Quirk; evidence: BootEvent[] } | undefined)[] = [
  function chainloadLoop(ev) {
    const loads = ev.filter((e) => e.kind === 'tftp.done' && IPXE_LOADER.test(String(e.detail?.file ?? '')));
    if (loads.length < 2 || ev.some((e) => e.kind === 'http.script' && at(e) > at(loads[0]))) return undefined;
    return {
      quirk: {
        id: 'chainload-loop',
        title: 'The iPXE binary is downloaded again and again',
        explanation: `${String(loads[0].detail?.file)} was fetched ${loads.length} times and no boot script was ever asked for: when iPXE asks DHCP for its script, it is given the iPXE binary again.`,
        advice: 'The DHCP request iPXE sends was not recognised as iPXE (no user class "iPXE" and no option 175: a custom iPXE build), or another DHCP server answered it. Use Debian\'s iPXE binaries, or give iPXE an embedded script, and check that only zeroboot answers PXE clients on this segment.',
      },
      evidence: loads,
    };
  },
  function grubWrongServer(ev) {
    const e = [...ev].reverse().find((x) => x.kind === 'grub.error' && /never asked this server/.test(x.reason ?? ''));
    if (!e) return undefined;
    return {
      quirk: {
        id: 'grub-wrong-server',
        title: 'GRUB was fetched but never asked for its configuration',
        explanation: 'GRUB came over TFTP from this server, then asked nobody here for grub.cfg: it took its TFTP server from another DHCP server\'s answer.',
        advice: 'Debian\'s GRUB uses the next-server of the DHCP ACK, not of a proxy offer. Set next-server (siaddr/option 66) to this server on the DHCP server that gives the addresses, or run zeroboot in full mode.',
      },
      evidence: [e],
    };
  },
  function downloadFailed(ev) {
    const e = [...ev].reverse().find((x) => x.kind === 'http.error');
    if (!e || ev.some((x) => (x.kind === 'http.kernel' || x.kind === 'http.initrd') && at(x) > at(e))) return undefined;
    return {
      quirk: {
        id: 'download-failed',
        title: 'A download failed',
        explanation: `The server answered ${String(e.detail?.path ?? 'a request')} with ${e.reason ?? 'an error'}.`,
        advice: 'Check that the profile\'s kernel and initrd files exist in the store (zeroboot serve --check names missing ones), and the server log for the request.',
      },
      evidence: [e],
    };
  },
  function tftpFailed(ev) {
    const e = [...ev].reverse().find((x) => x.kind === 'tftp.error' && !x.detail?.optional && !x.detail?.probe);
    if (!e || ev.some((x) => x.kind === 'tftp.done' && at(x) > at(e))) return undefined;
    return {
      quirk: {
        id: 'tftp-failed',
        title: 'The TFTP download failed',
        explanation: `${String(e.detail?.file ?? 'A file')}: ${e.reason ?? 'error'}.`,
        advice: 'A file the loader asks for is missing, or the client stopped acknowledging (a firewall dropping the transfer\'s new port, an MTU below the negotiated block size).',
      },
      evidence: [e],
    };
  },
  function proxyIgnored(ev, input) {
    const offers = ev.filter(isProxyOffer);
    const last = offers[offers.length - 1];
    if (!last || input.now - at(last) < input.quietMs) return undefined;
    const after = ev.filter((e) => at(e) >= at(last) && e !== last);
    if (after.some((e) => (e.kind === 'dhcp.request' && e.detail?.bootServer) || e.kind.startsWith('tftp.') || e.kind.startsWith('http.'))) return undefined;
    return {
      quirk: {
        id: 'proxy-ignored',
        title: 'The PXE ROM ignores the proxyDHCP offers',
        explanation: `${offers.length} proxy offer(s) went out (boot file ${String(last.detail?.bootfile)}), and then nothing came: no request on port 4011, no TFTP download.`,
        advice: 'Some PXE ROMs only take boot information from the server that gave them their address. Set options 66/67 (next-server and boot file) on that DHCP server, or let zeroboot give the addresses (dhcp mode full) on a segment of its own.',
      },
      evidence: offers,
    };
  },
  function offerNotTaken(ev, input) {
    const offers = ev.filter((e) => e.kind === 'dhcp.offer' && e.detail?.ip !== undefined);
    const last = offers[offers.length - 1];
    if (!last || input.now - at(last) < input.quietMs) return undefined;
    if (ev.some((e) => at(e) > at(last) && e.kind !== 'dhcp.offer' && e.kind !== 'dhcp.discover' && e.kind !== 'dhcp.ignored')) return undefined;
    return {
      quirk: {
        id: 'offer-not-taken',
        title: 'Offers sent, never requested',
        explanation: `${offers.length} offer(s) of ${String(last.detail?.ip)} went out and the client never asked for one.`,
        advice: 'The client took another DHCP server\'s offer, or never received ours (a VLAN or relay in between, a switch port still in spanning-tree listening). Look for another DHCP server on the segment (scripts/provision-farm.mjs probes for one).',
      },
      evidence: offers,
    };
  },
  function dhcpIgnored(ev) {
    const e = ev[ev.length - 1];
    if (!e || e.kind !== 'dhcp.ignored') return undefined;
    return {
      quirk: { id: 'dhcp-ignored', title: 'The server ignores this machine\'s DHCP packets', explanation: e.reason ?? 'ignored', advice: 'The reason above says which rule dropped the packet (a reservation elsewhere, a relay not configured, a malformed packet).' },
      evidence: [e],
    };
  },
  function stuckInImage(ev, input) {
    const initrd = [...ev].reverse().find((e) => e.kind === 'http.initrd' || e.kind === 'http.kernel');
    if (!initrd || input.now - at(initrd) < input.reportMs) return undefined;
    return {
      quirk: {
        id: 'stuck-in-image',
        title: 'The image was fetched but the node never reported',
        explanation: `The kernel and initrd were downloaded (last at ${initrd.time}) and no signed report came within ${Math.round(input.reportMs / 1000)} s.`,
        advice: 'The node is stuck in the image: no driver for its NIC, no address on the boot NIC, or the agent failed. The node\'s console shows the ZEROBOOT-FAIL line with the reason when the image got that far.',
      },
      evidence: [initrd],
    };
  },
];

export function diagnose(input: DiagnosisInput): Diagnosis {
  const { events, reportedAt } = input;
  const lastKernel = [...events].reverse().find((e) => e.kind === 'http.kernel');
  const reported = reportedAt !== undefined && (!lastKernel || reportedAt >= at(lastKernel));
  const stage = stageOf(events, reported);
  const console = input.console ? { console: input.console } : {};
  if (reported) return { stage, state: 'reported', evidence: [], ...console };
  const last = events[events.length - 1];
  const attempt = lastAttempt(events);
  for (const rule of QUIRKS) {
    const found = rule(attempt, input);
    if (found) return { stage, state: 'stopped', cause: found.quirk, evidence: found.evidence, ...console };
  }
  const quiet = !last || input.now - at(last) >= input.quietMs;
  return { stage, state: quiet ? 'stopped' : 'progressing', evidence: [], ...console };
}
