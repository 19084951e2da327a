// The image builder's refusal, in its own module so that every step of the
// build (build.ts, secure-boot.ts) can throw it without importing each other.

/** A build that cannot go on; the message names the package or file and what is wrong with it. */
export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}
