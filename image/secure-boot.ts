// UEFI Secure Boot loaders for an image: the firmware runs shim (signed by
// Microsoft, which the firmware's db trusts), shim runs GRUB (signed by
// Debian, whose key shim carries), and GRUB runs the kernel, which shim
// checks against the same Debian key. Both loaders come from Debian's
// packages, byte for byte, and sit next to vmlinuz. The file names are a
// contract with the server: shim fetches `<its own directory>/grubx64.efi`
// over TFTP, so GRUB must have that name and sit in shim's directory.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GRUB_FILE, SHIM_FILE } from '../lib/loaders.ts';
import { ImageBuildError } from './errors.ts';
import { peSignature, PeFormatError } from './pe-signature.ts';

// The names are shared with the server (lib/loaders.ts): it hands out shim by name and shim asks for GRUB by name.
export { GRUB_FILE, SHIM_FILE };

export { SHIM_PACKAGE, GRUB_PACKAGE } from './spec.ts';
/** Paths inside the unpacked packages. */
export const SHIM_SOURCE = 'usr/lib/shim/shimx64.efi.signed';
export const GRUB_SOURCE = 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';

/** Throws ImageBuildError unless `data` is a PE file carrying an Authenticode signature; `hint` replaces the PE reader's reason. */
export function requireSigned(data: Uint8Array, what: string, hint = ''): void {
  let signed: boolean;
  let reason = '';
  try {
    const info = peSignature(data);
    signed = info.signed;
    reason = info.reason ?? '';
  } catch (e) {
    if (e instanceof PeFormatError) throw new ImageBuildError(`${what} is not an EFI program: ${e.message}`);
    throw e;
  }
  if (!signed) throw new ImageBuildError(`${what} is not signed: ${hint || reason}`);
}

/** The message for a kernel without a signature. */
export function unsignedKernelHint(release: string): string {
  return `Secure Boot needs Debian's signed kernel package linux-image-${release}, not the -unsigned one`;
}

/** Reads one loader from an unpacked package and checks that it is signed. */
async function loader(tree: string, source: string, pkg: string): Promise<Buffer> {
  const data = await readFile(join(tree, source)).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new ImageBuildError(`${pkg}: no /${source} in the package`);
    throw e;
  });
  requireSigned(data, `${pkg}: /${source}`);
  return data;
}

/** The two artifacts, by output name, from the unpacked shim-signed and grub-efi-amd64-signed packages. */
export async function secureBootLoaders(shim: { tree: string; package: string }, grub: { tree: string; package: string }): Promise<[string, Buffer][]> {
  return [
    [SHIM_FILE, await loader(shim.tree, SHIM_SOURCE, shim.package)],
    [GRUB_FILE, await loader(grub.tree, GRUB_SOURCE, grub.package)],
  ];
}
