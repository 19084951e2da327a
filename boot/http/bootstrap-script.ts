// The iPXE script of the bootstrap grammar (/ipxe/<runmode>/...): what the
// reference embeds in its media. It needs an address first (an embedded
// script starts with none), so it tries DHCP on every net<N>, fetches the
// kernel set with retries, and names what went wrong on the console (no
// NIC, DHCP failed, download failed, exec failed) before it waits and
// reboots. The script is per farm, not per machine: no MAC in it.
import { checkBase, dhcpLines, ipxeSafeText, rebootLines, retried, ScriptValueError } from '../../lib/ipxe-script.ts';

const URL_SAFE = /^[A-Za-z0-9._~:/?=&%@+,-]+$/;

export interface BootstrapScriptInput {
  base: string;
  /** The kernel set's name, as /kernel/<name> serves it. */
  kernel: string;
  initrds: number;
  cmdline: string;
  /** What the console shows first (runmode, farm). */
  title: string;
}

/** URL of a kernel set's kernel (initrd undefined) or of its initrd number `initrd`. */
export function kernelUrl(base: string, name: string, initrd?: number): string {
  const url = `${checkBase(base)}/kernel/${encodeURIComponent(name)}${initrd === undefined ? '' : `/initrd/${initrd}`}`;
  if (!URL_SAFE.test(url)) throw new ScriptValueError(`URL ${JSON.stringify(url)} holds characters unsafe in an iPXE script`);
  return url;
}

export function renderBootstrapScript(input: BootstrapScriptInput): string {
  const base = checkBase(input.base);
  // UEFI kernels find their initrds by name on the command line; BIOS kernels ignore the word.
  const names = Array.from({ length: input.initrds }, (_, i) => `initrd${i}`);
  const cmdline = [input.cmdline, ...names.map((n) => `initrd=${n}`)].filter((s) => s !== '').join(' ');
  const lines = [
    '#!ipxe',
    `echo zeroboot bootstrap: ${ipxeSafeText(input.title)}`,
    'isset ${netX/ip} && goto online || echo zeroboot: no address yet, trying DHCP on every interface',
    ...dhcpLines('online'),
    ':online',
    'echo zeroboot: ${netX/mac} has ${netX/ip}',
    // imgfetch + imgselect: a kernel the firmware refuses reads as an exec failure, not as a failed download.
    ...retried(`imgfetch --name kernel ${kernelUrl(base, input.kernel)} ${cmdline}`, 'kernel_ok', 'kernel'),
    'imgselect kernel || goto exec_failed',
  ];
  names.forEach((n, i) => lines.push(...retried(`initrd --name ${n} ${kernelUrl(base, input.kernel, i)}`, `${n}_ok`, `initrd ${i}`)));
  lines.push(
    'echo zeroboot: starting the kernel',
    'boot || goto exec_failed',
    ':exec_failed',
    'echo zeroboot: exec failed: the kernel did not start (wrong architecture, Secure Boot or a corrupt image?)',
    'goto reboot',
    ':no_nic',
    'echo zeroboot: no network interface found (a NIC without a driver in iPXE?)',
    'goto reboot',
    ':dhcp_failed',
    'echo zeroboot: DHCP failed on every interface',
    'goto reboot',
    ':download_failed',
    `echo zeroboot: download failed from ${base}`,
    ...rebootLines(),
  );
  return lines.join('\n') + '\n';
}
