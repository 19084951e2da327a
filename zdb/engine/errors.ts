/**
 * An engine refusal. For client-visible failures the message is the exact
 * reference 0-db text (the server sends it as `-<message>`); for open-time
 * refusals it says what is wrong with which file and what to do.
 */
export class ZdbEngineError extends Error {
  override name = 'ZdbEngineError';
}

/** A write that failed on disk (ENOSPC, EIO): the namespace is read-only until RELOAD. */
export class ZdbWriteFailure extends ZdbEngineError {
  override name = 'ZdbWriteFailure';
}
