// boot.ipxe for a built image: loads `vmlinuz` and `initramfs.img` from
// the directory the script itself was fetched from (iPXE resolves relative
// URIs against the script's URI), passes BOOTIF so the image's /init brings
// up the NIC iPXE booted from, and prints a distinct message for a failed
// download and a failed boot before rebooting.
import { buildCmdline } from '../boot/http/cmdline.ts';
import type { KernelArgs } from '../boot/http/cmdline.ts';
import { DOWNLOAD_ATTEMPTS } from '../boot/http/ipxe-script.ts';

export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initramfs.img';

const RETRY_PAUSE_S = 3;
const REBOOT_PAUSE_S = 30;

function retried(cmd: string, label: string, what: string): string[] {
  const lines: string[] = [];
  for (let n = 1; n <= DOWNLOAD_ATTEMPTS; n++) {
    const next = n === DOWNLOAD_ATTEMPTS ? `echo zeroboot: ${what} download failed && goto download_failed` : `echo zeroboot: ${what} attempt ${n} failed, retrying && sleep ${RETRY_PAUSE_S}`;
    lines.push(`${cmd} && goto ${label} || ${next}`);
  }
  lines.push(`:${label}`);
  return lines;
}

export function imageBootScript(imageName: string, release: string, args: KernelArgs): string {
  // `initrd=initrd0` lets an EFI-stub kernel find the initrd by name; a BIOS kernel ignores it.
  const cmdline = [buildCmdline(args), 'BOOTIF=01-${netX/mac:hexhyp}', 'initrd=initrd0'].filter((w) => w !== '').join(' ');
  const lines = [
    '#!ipxe',
    `# zeroboot image ${imageName}: kernel ${release}; ${KERNEL_FILE} and ${INITRD_FILE} sit next to this script`,
    `echo zeroboot: booting image ${imageName} (kernel ${release}) on \${netX/mac}`,
    ...retried(`kernel --name kernel ${KERNEL_FILE} ${cmdline}`, 'kernel_ok', 'kernel'),
    ...retried(`initrd --name initrd0 ${INITRD_FILE}`, 'initrd_ok', 'initramfs'),
    'boot || goto exec_failed',
    ':exec_failed',
    'echo zeroboot: exec failed: the kernel did not start',
    'goto reboot',
    ':download_failed',
    'echo zeroboot: download failed',
    ':reboot',
    `echo zeroboot: rebooting in ${REBOOT_PAUSE_S} seconds`,
    `sleep ${REBOOT_PAUSE_S}`,
    'reboot',
  ];
  return lines.join('\n') + '\n';
}
