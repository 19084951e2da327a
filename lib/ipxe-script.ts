// iPXE scripts, rendered as text: the chain script every machine fetches
// first (it reports the machine's labels), the per-machine boot script, and
// the script that tells a person at the console why a machine cannot boot.
// Every value placed in a script is checked or filtered here: iPXE expands
// `${...}` anywhere, splits words on blanks, treats `&&`/`||` as operators
// and a newline as a new command, so a label a machine sends must never be
// able to add a command.
import type { Profile } from './profile.ts';
import { buildCmdline } from './cmdline.ts';
import type { KernelArgs } from './cmdline.ts';
import { hyphenMac } from './mac.ts';

export class ScriptTemplateError extends Error {}
export class ScriptValueError extends Error {}

/** Attempts per download, as in the Zero-OS reference script. */
export const DOWNLOAD_ATTEMPTS = 3;
/** Interfaces the chain script tries DHCP on when it has no address yet. */
export const MAX_INTERFACES = 8;
const RETRY_PAUSE_S = 3;
const REBOOT_PAUSE_S = 30;

const BASE = /^https?:\/\/[A-Za-z0-9.:[\]_-]+(\/[A-Za-z0-9._~/-]*)?$/;
const URL_SAFE = /^[A-Za-z0-9._~:/?=&%@+,-]+$/;

/** Checks and normalises the base URL scripts point at (no trailing slash). */
export function checkBase(base: string): string {
  if (!BASE.test(base)) throw new ScriptValueError(`base URL ${JSON.stringify(base)} must be http(s)://host[:port][/path] with plain characters`);
  return base.replace(/\/+$/, '');
}

/** Text safe inside an iPXE `echo`: anything that could expand, split into operators or end the line becomes "?". */
export function ipxeSafeText(text: string): string {
  return text.replace(/[^A-Za-z0-9 _.,:;/@+=%~()<>[\]*!?^-]/g, '?').replace(/ {2,}/g, ' ').slice(0, 400);
}

/** hex-hyphen MAC, the form iPXE's `${mac:hexhyp}` prints. */
function macHyphen(mac: string): string {
  const hyp = hyphenMac(mac);
  if (!hyp) throw new ScriptValueError(`${JSON.stringify(mac)} is not a MAC address`);
  return hyp;
}

/** URL of a store path, tagged with the MAC so the server can attribute the download. */
export function artifactUrl(base: string, storePath: string, mac: string): string {
  const segments = storePath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.includes('..')) throw new ScriptValueError(`store path ${JSON.stringify(storePath)} is not a file path`);
  const url = `${checkBase(base)}/${segments.map(encodeURIComponent).join('/')}?mac=${macHyphen(mac)}`;
  if (!URL_SAFE.test(url)) throw new ScriptValueError(`URL ${JSON.stringify(url)} holds characters unsafe in an iPXE script`);
  return url;
}

/**
 * The script iPXE fetches first (`/boot.ipxe`). With no address yet (an
 * embedded script on USB/ISO) it tries DHCP on each interface; then it asks
 * for its own script with the labels selection uses. `netX` is the interface
 * opened last, the one that got the address, so its MAC is the one booted.
 */
export function renderChainScript(base: string): string {
  const b = checkBase(base);
  const query =
    'mac=${netX/mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&arch=${buildarch}' +
    '&platform=${platform}&hostname=${hostname:uristring}&manufacturer=${manufacturer:uristring}&product=${product:uristring}';
  const lines = [
    '#!ipxe',
    '# zeroboot chain script: asks the server for this machine\'s boot script.',
    'isset ${netX/ip} && goto online || echo zeroboot: no address yet, trying DHCP on every interface',
  ];
  lines.push(
    ...dhcpLines('online'),
    ':online',
    'echo zeroboot: ${netX/mac} has ${netX/ip}, fetching its boot script from ' + b,
  );
  const chain = `chain --replace --autofree ${b}/ipxe?${query}`;
  for (let n = 1; n <= DOWNLOAD_ATTEMPTS; n++) {
    const next = n === DOWNLOAD_ATTEMPTS ? 'goto download_failed' : `echo zeroboot: boot script attempt ${n} failed, retrying && sleep ${RETRY_PAUSE_S}`;
    lines.push(`${chain} || ${next}`);
  }
  lines.push(
    ':no_nic',
    'echo zeroboot: no network interface found',
    'goto reboot',
    ':dhcp_failed',
    'echo zeroboot: DHCP failed on every interface',
    'goto reboot',
    ':download_failed',
    `echo zeroboot: download failed: could not fetch or run ${b}/ipxe`,
    ...rebootLines(),
  );
  return lines.join('\n') + '\n';
}

/**
 * DHCP on net0, net1, ... (DOWNLOAD_ATTEMPTS tries each) until one gets an
 * address, then `goto <online>`; no first interface goes to `no_nic`, none
 * answered to `dhcp_failed` (the caller writes both labels).
 */
export function dhcpLines(online: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < MAX_INTERFACES; i++) {
    lines.push(`isset \${net${i}/mac} || goto ${i === 0 ? 'no_nic' : 'dhcp_failed'}`);
    lines.push(`echo zeroboot: net${i} \${net${i}/mac} \${net${i}/chip}`);
    const tries = Array.from({ length: DOWNLOAD_ATTEMPTS }, () => `dhcp net${i} && goto ${online}`).join(' || ');
    lines.push(`${tries} || echo zeroboot: DHCP failed on net${i}`);
  }
  lines.push('goto dhcp_failed');
  return lines;
}

/** The `:reboot` label: a pause a person can read the console in, then reboot. */
export function rebootLines(): string[] {
  return [':reboot', `echo zeroboot: rebooting in ${REBOOT_PAUSE_S} seconds`, `sleep ${REBOOT_PAUSE_S}`, 'reboot'];
}

export interface MachineScriptInput {
  profile: Profile;
  /** Merged kernel arguments (profile, group, machine). */
  args: KernelArgs;
  base: string;
  /** The machine's MAC in any common form. */
  mac: string;
  group?: string;
  reason?: string;
}

/** Values a profile's `script` template may use. */
export interface ScriptValues {
  base: string;
  mac: string;
  kernel: string;
  initrds: string[];
  cmdline: string;
}

export function scriptValues(input: MachineScriptInput): ScriptValues {
  const base = checkBase(input.base);
  return {
    base,
    mac: macHyphen(input.mac).replace(/-/g, ':'),
    kernel: artifactUrl(base, input.profile.kernel, input.mac),
    initrds: input.profile.initrd.map((p) => artifactUrl(base, p, input.mac)),
    cmdline: buildCmdline(input.args, input.profile.cmdline),
  };
}

/**
 * Fills a profile's own template. Placeholders: {{base}}, {{mac}},
 * {{kernel}}, {{cmdline}}, {{initrd}} (the first initrd) and {{initrd0}},
 * {{initrd1}}... (by position). {{cmdline}} carries no `initrd=` words; a
 * UEFI template adds them for its own image names.
 */
export function renderTemplate(template: string, values: ScriptValues, profileName = 'profile'): string {
  if (!/^#!ipxe[ \t]*(\r?\n|$)/.test(template)) throw new ScriptTemplateError(`the script of profile "${profileName}" must start with "#!ipxe"`);
  return template.replace(/\{\{\s*([A-Za-z0-9_]*)\s*\}\}/g, (_, name: string) => {
    if (name === 'base' || name === 'mac' || name === 'kernel' || name === 'cmdline') return values[name];
    const m = /^initrd([0-9]*)$/.exec(name);
    if (m) {
      const url = values.initrds[m[1] === '' ? 0 : Number(m[1])];
      if (url !== undefined) return url;
      throw new ScriptTemplateError(`the script of profile "${profileName}" uses {{${name}}} but the profile has ${values.initrds.length} initrd(s)`);
    }
    throw new ScriptTemplateError(`the script of profile "${profileName}" uses unknown placeholder {{${name}}} (known: base, mac, kernel, cmdline, initrd, initrd0, initrd1, ...)`);
  });
}

/** Lines that run `cmd` up to DOWNLOAD_ATTEMPTS times, then go to `ok` or `download_failed`. */
export function retried(cmd: string, ok: string, what: string): string[] {
  const lines: string[] = [];
  for (let n = 1; n <= DOWNLOAD_ATTEMPTS; n++) {
    const next = n === DOWNLOAD_ATTEMPTS ? `echo zeroboot: ${what} download failed && goto download_failed` : `echo zeroboot: ${what} attempt ${n} failed, retrying && sleep ${RETRY_PAUSE_S}`;
    lines.push(`${cmd} && goto ${ok} || ${next}`);
  }
  lines.push(`:${ok}`);
  return lines;
}

/**
 * The machine's boot script: the profile's template if it has one, else the
 * built-in one (kernel and initrds with retries, boot, and a distinct
 * message for a failed download or a failed boot, then reboot).
 */
export function renderMachineScript(input: MachineScriptInput): string {
  const v = scriptValues(input);
  if (input.profile.script !== undefined) return renderTemplate(input.profile.script, v, input.profile.name);
  // UEFI kernels find their initrds by name on the command line (iPXE of
  // 2019 offers no LoadFile2); BIOS kernels ignore an `initrd=` without a comma.
  const names = v.initrds.map((_, i) => `initrd${i}`);
  // BOOTIF (the pxelinux convention) tells the image's init which NIC booted,
  // so a multi-NIC node brings up that one and not whichever probes first.
  const bootif = /(^| )BOOTIF=/.test(v.cmdline) ? [] : [`BOOTIF=01-${macHyphen(input.mac)}`];
  const cmdline = [v.cmdline, ...bootif, ...names.map((n) => `initrd=${n}`)].filter((s) => s !== '').join(' ');
  // The reason already names the group or machine entry that chose the profile.
  const who = ipxeSafeText(`profile ${input.profile.name}${input.reason ? ` (${input.reason})` : input.group ? ` (group ${input.group})` : ''}`);
  const lines = ['#!ipxe', `# zeroboot boot script for ${v.mac}`, `echo zeroboot: ${v.mac} boots ${who}`];
  // imgfetch + imgselect rather than `kernel`: a kernel the firmware refuses
  // (Secure Boot, wrong architecture) must read as an exec failure, not be
  // retried as a failed download.
  lines.push(...retried(`imgfetch --name kernel ${v.kernel}${cmdline ? ' ' + cmdline : ''}`, 'kernel_ok', 'kernel'));
  lines.push('imgselect kernel || goto exec_failed');
  v.initrds.forEach((url, i) => lines.push(...retried(`initrd --name ${names[i]} ${url}`, `${names[i]}_ok`, `initrd ${i}`)));
  lines.push(
    'echo zeroboot: starting the kernel',
    'boot || goto exec_failed',
    ':exec_failed',
    'echo zeroboot: exec failed: the kernel did not start (wrong architecture or a corrupt image?)',
    'goto reboot',
    ':download_failed',
    `echo zeroboot: download failed from ${v.base}`,
    ...rebootLines(),
  );
  return lines.join('\n') + '\n';
}

/** A script that shows `message` on the console, waits and reboots, instead of an HTTP error iPXE would only show as a code. */
export function renderErrorScript(message: string): string {
  const lines = ['#!ipxe', 'echo zeroboot: this machine cannot boot yet'];
  // Long messages are wrapped so a console of 80 columns shows all of it.
  const text = ipxeSafeText(message);
  for (let i = 0; i < text.length; i += 70) lines.push(`echo zeroboot: ${text.slice(i, i + 70)}`);
  lines.push(...rebootLines());
  return lines.join('\n') + '\n';
}
