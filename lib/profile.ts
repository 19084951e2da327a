// What a machine boots: kernel, initrds and arguments, as a profile of the
// server's configuration names them. Shared by the selection (which picks
// one) and the renderers of iPXE scripts and GRUB configurations.

export interface Profile {
  name: string;
  /** Store path of the kernel, e.g. "images/zos/vmlinuz". */
  kernel: string;
  /** Store paths of the initrds, loaded in order. */
  initrd: string[];
  /** Kernel arguments as key=value (a null value prints the bare key). */
  args: Record<string, string | number | null>;
  /** Extra kernel command line text, appended verbatim. */
  cmdline?: string;
  /** Optional iPXE script template replacing the built-in one. */
  script?: string;
  /**
   * UEFI x64 PXE clients boot the signed chain instead of iPXE: shim
   * (shimx64.efi next to the kernel) -> GRUB (grubx64.efi beside it) ->
   * kernel and initrds over TFTP. Works with Secure Boot on or off.
   */
  secureBoot?: boolean;
}
