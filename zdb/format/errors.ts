/** A file whose bytes do not follow the 0-db v2 layout; the message names the file part. */
export class ZdbFormatError extends Error {
  override name = 'ZdbFormatError';
}
