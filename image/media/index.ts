// Boot media from a kernel, an initramfs and a command line: the UKI
// (zos.efi), the hybrid ISO (zos.iso) and the USB disk image (zos-usb.img).
// Each builder is self-contained (reads its inputs, writes one file through
// a temporary name), so a server can build media per request.
export { buildUki, buildUefiImg, ukiBytes, readStub, DEFAULT_EFI_STUB } from './uki.ts';
export type { UkiOptions } from './uki.ts';
export { buildIso, isolinuxConfig, ISO_VOLUME_ID } from './iso.ts';
export { buildUsb, PARTITION_START } from './usb.ts';
export { MediaInputError, MediaToolError } from './errors.ts';
export { checkCmdline, loadInput, MAX_CMDLINE } from './input.ts';
export type { MediaInput } from './input.ts';
export { EFI_BOOT_PATH, MEDIA_INITRD, MEDIA_KERNEL } from './options.ts';
export type { MediaOptions } from './options.ts';
export { fatLayout, fatImage } from './fat.ts';
export { addPeSections, peSections, peSectionData } from './pe-sections.ts';
export { buildMedia, UKI_FILE, ISO_FILE, USB_FILE } from './all.ts';
