// GRUB configurations for the UEFI Secure Boot chain (firmware -> shim ->
// GRUB -> kernel), rendered as text. Signed GRUB loads no unsigned modules,
// so no HTTP: the kernel and initrds come over TFTP from the store. GRUB
// first reads `<prefix>/grub.cfg`, the same for every machine; it sends the
// booting NIC's MAC in the name of the second file, which holds the
// machine's own configuration. Every value placed in a configuration is
// checked or quoted here: GRUB expands `$...`, splits words on blanks and
// treats `;`, `#`, quotes and a newline specially, so a profile value must
// never be able to add a command.
import type { Profile } from '../../lib/profile.ts';
import { buildCmdline } from '../../lib/cmdline.ts';
import type { KernelArgs } from '../../lib/cmdline.ts';
import { DOWNLOAD_ATTEMPTS } from '../../lib/ipxe-script.ts';
import { bootifOf, parseSeparatedMac } from '../../lib/mac.ts';

export class GrubValueError extends Error {}

/** The per-machine file GRUB asks for: `grub.cfg-` and the MAC as GRUB prints `$net_default_mac`. */
export const MACHINE_CONFIG_PREFIX = 'grub.cfg-';
const RETRY_PAUSE_S = 3;
const REBOOT_PAUSE_S = 30;
const PLAIN_WORD = /^[A-Za-z0-9_.,:/=+@%~-]+$/;

/** A word GRUB reads back exactly: plain, or single-quoted (nothing expands inside). */
export function grubWord(word: string): string {
  if (PLAIN_WORD.test(word)) return word;
  if (/['\n\r\0]/.test(word)) throw new GrubValueError(`${JSON.stringify(word)} cannot be passed through GRUB (a quote or a line break)`);
  return `'${word}'`;
}

/** Text for a GRUB `echo`: anything that could expand, quote or end the command becomes "?". */
export function grubSafeText(text: string): string {
  return text.replace(/[^A-Za-z0-9 _.,:/@+=%~()<>[\]*!?^-]/g, '?').replace(/ {2,}/g, ' ').slice(0, 400);
}

/** A store path as a TFTP path from GRUB's root (the server GRUB came from). */
export function grubStorePath(storePath: string): string {
  const segments = storePath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.includes('..')) throw new GrubValueError(`store path ${JSON.stringify(storePath)} is not a file path`);
  return grubWord(`/${segments.join('/')}`);
}

/** `<prefix>/grub.cfg`: the same for every machine; it loads the machine's own file. */
export function renderGrubChain(): string {
  return [
    '# zeroboot: GRUB reads this first; the machine\'s own configuration is named after its MAC',
    'set timeout=0',
    // two short lines: GRUB wraps at 80 columns, which would split the server off in console logs
    'echo "zeroboot: $net_default_mac has $net_default_ip"',
    'echo "zeroboot: configuration from $prefix"',
    `configfile "$prefix/${MACHINE_CONFIG_PREFIX}$net_default_mac"`,
    'echo "zeroboot: no configuration for $net_default_mac"',
    ...rebootLines(),
  ].join('\n') + '\n';
}

function rebootLines(): string[] {
  return [`echo "zeroboot: rebooting in ${REBOOT_PAUSE_S} seconds"`, `sleep ${REBOOT_PAUSE_S}`, 'reboot'];
}

/** Lines that run `cmd` up to DOWNLOAD_ATTEMPTS times; on the last failure `failed` runs. */
function retried(cmd: string, flag: string, what: string, failed: string[]): string[] {
  return [
    `set ${flag}=no`,
    `for attempt in ${Array.from({ length: DOWNLOAD_ATTEMPTS }, (_, i) => i + 1).join(' ')}; do`,
    `  if ${cmd}; then set ${flag}=yes; break; fi`,
    `  echo "zeroboot: ${what} attempt $attempt failed, retrying"`,
    `  sleep ${RETRY_PAUSE_S}`,
    'done',
    `if [ "$${flag}" != yes ]; then`,
    ...failed.map((l) => `  ${l}`),
    'fi',
  ];
}

export interface GrubMachineInput {
  profile: Profile;
  /** Merged kernel arguments (profile, group, machine). */
  args: KernelArgs;
  mac: string;
  group?: string;
  reason?: string;
}

/** The machine's configuration: kernel and initrds over TFTP with retries, boot, and a message for each way it can fail. */
export function renderGrubMachineConfig(input: GrubMachineInput): string {
  // GRUB's `$net_default_mac` form: colons only.
  const mac = parseSeparatedMac(input.mac, ':');
  if (!mac) throw new GrubValueError(`${JSON.stringify(input.mac)} is not a MAC address`);
  const cmdline = buildCmdline(input.args, input.profile.cmdline);
  // BOOTIF tells the image's init which NIC booted, as the iPXE script does.
  const words = cmdline === '' ? [] : cmdline.split(' ');
  if (!words.some((w) => w.startsWith('BOOTIF='))) words.push(`BOOTIF=${bootifOf(mac)}`);
  const kernel = grubStorePath(input.profile.kernel);
  const initrds = input.profile.initrd.map(grubStorePath);
  const who = grubSafeText(`profile ${input.profile.name}${input.reason ? ` (${input.reason})` : input.group ? ` (group ${input.group})` : ''}`);
  const fail = (what: string) => [`echo "zeroboot: ${what}"`, ...rebootLines()];
  const lines = [
    `# zeroboot GRUB configuration for ${mac}`,
    'set timeout=0',
    `echo "zeroboot: ${mac} boots ${who}"`,
    // Under Secure Boot shim checks the kernel's signature here: an unsigned kernel fails like a download.
    ...retried(`linux ${[kernel, ...words.map(grubWord)].join(' ')}`, 'zb_kernel', 'kernel', fail('kernel download failed, or Secure Boot refused it (is it signed?)')),
  ];
  if (initrds.length > 0) lines.push(...retried(`initrd ${initrds.join(' ')}`, 'zb_initrd', 'initrd', fail('initrd download failed')));
  lines.push('echo "zeroboot: starting the kernel"', 'boot', ...fail('exec failed: the kernel did not start'));
  return lines.join('\n') + '\n';
}

/** A configuration that shows `message` on the console, waits and reboots. */
export function renderGrubError(message: string): string {
  const text = grubSafeText(message);
  const lines = ['# zeroboot: this machine cannot boot yet', 'set timeout=0', 'echo "zeroboot: this machine cannot boot yet"'];
  for (let i = 0; i < text.length; i += 70) lines.push(`echo "zeroboot: ${text.slice(i, i + 70)}"`);
  lines.push(...rebootLines());
  return lines.join('\n') + '\n';
}
