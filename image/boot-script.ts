// boot.ipxe for a built image: loads `vmlinuz` and `initramfs.img` from
// the directory the script itself was fetched from (iPXE resolves relative
// URIs against the script's URI), passes BOOTIF so the image's /init brings
// up the NIC iPXE booted from, and prints a distinct message for a failed
// download and a failed boot before rebooting.
import { buildCmdline } from '../lib/cmdline.ts';
import type { KernelArgs } from '../lib/cmdline.ts';
import { retried, rebootLines } from '../lib/ipxe-script.ts';

export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initramfs.img';

export function imageBootScript(imageName: string, release: string, args: KernelArgs): string {
  // `initrd=initrd0` lets an EFI-stub kernel find the initrd by name; a BIOS kernel ignores it.
  const cmdline = [buildCmdline(args), 'BOOTIF=01-${netX/mac:hexhyp}', 'initrd=initrd0'].filter((w) => w !== '').join(' ');
  const lines = [
    '#!ipxe',
    `# zeroboot image ${imageName}: kernel ${release}; ${KERNEL_FILE} and ${INITRD_FILE} sit next to this script`,
    `echo zeroboot: booting image ${imageName} (kernel ${release}) on \${netX/mac}`,
    ...retried(`imgfetch --name kernel ${KERNEL_FILE} ${cmdline}`, 'kernel_ok', 'kernel'),
    'imgselect kernel || goto exec_failed',
    ...retried(`initrd --name initrd0 ${INITRD_FILE}`, 'initrd_ok', 'initramfs'),
    'boot || goto exec_failed',
    ':exec_failed',
    'echo zeroboot: exec failed: the kernel did not start',
    'goto reboot',
    ':download_failed',
    'echo zeroboot: download failed',
    ...rebootLines(),
  ];
  return lines.join('\n') + '\n';
}
