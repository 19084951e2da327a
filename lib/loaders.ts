// Boot loader file names: a contract between the DHCP server (which hands
// them out), the TFTP/HTTP servers (which serve them), the image builder
// (which writes the signed ones) and the rig. Debian's ipxe package ships the
// iPXE binaries in /usr/lib/ipxe; the signed loaders sit next to the kernel.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** iPXE for legacy BIOS PXE ROMs: keeps the ROM's UNDI NIC driver. */
export const IPXE_BIOS_FILE = 'undionly.kpxe';
/** iPXE for UEFI: keeps the firmware's SNP NIC driver (iPXE's own drivers hang on some NICs). */
export const IPXE_UEFI_FILE = 'snponly.efi';
/** Microsoft-signed shim, the first program of the Secure Boot chain. */
export const SHIM_FILE = 'shimx64.efi';
/** Debian-signed network GRUB, under the name and in the directory shim fetches it by. */
export const GRUB_FILE = 'grubx64.efi';

/** The loaders of the signed chain, which an image built with `secureBoot: true` carries next to its kernel. */
export const SIGNED_LOADERS = [SHIM_FILE, GRUB_FILE] as const;

/** The signed loaders an image directory lacks (none: it can boot the signed chain). */
export function missingSignedLoaders(imageDir: string): string[] {
  return SIGNED_LOADERS.filter((f) => !existsSync(join(imageDir, f)));
}

/**
 * Files shim and GRUB look for and do without: shim's revocation lists and
 * extra certificates, GRUB's module lists and its per-platform config.
 */
export const OPTIONAL_LOADER_FILES = /(^|\/)(revocations_(sku|sbat)\.efi|shim_certificate_\d+\.efi|grub\/x86_64-efi\/([a-z]+\.lst|grub\.cfg))$/;

/** The store path of the shim a profile's machines boot: next to its kernel. */
export function shimPath(profile: { kernel: string }): string {
  const dir = profile.kernel.includes('/') ? profile.kernel.slice(0, profile.kernel.lastIndexOf('/') + 1) : '';
  return `${dir}${SHIM_FILE}`;
}
