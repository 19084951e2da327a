// The bootstrap grammar's media builders: image/media's UKI, ISO and USB
// builders with their defaults (Debian's EFI stub, mtime 0), the build's
// abort signal handed to the tools they run (xorriso, grub-mkimage), so a
// build that times out kills them. The UKI is written in-process, no tool.
import { buildIso, buildUki, buildUsb } from '../../image/media/index.ts';
import type { MediaBuilders } from './bootstrap-routes.ts';

export const MEDIA_BUILDERS: MediaBuilders = {
  uki: (input, out) => buildUki(input, out),
  iso: (input, out, signal) => buildIso(input, out, { tools: { signal } }),
  usb: (input, out, signal) => buildUsb(input, out, { tools: { signal } }),
};
