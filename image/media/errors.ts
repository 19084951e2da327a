// The media builders' refusals. Each message names the input or tool and
// what to do about it, so a server answering a request can pass it on.

/** An input the builders cannot use: a missing kernel, a command line that would not survive a boot loader's config. */
export class MediaInputError extends Error {
  override name = 'MediaInputError';
}

/** A program the builder runs (xorriso, grub-mkimage) is not installed or failed. */
export class MediaToolError extends Error {
  override name = 'MediaToolError';
}
