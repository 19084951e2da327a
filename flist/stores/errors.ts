// Typed errors of the chunk stores. Every message names the store by its
// URL with the password stripped, and the chunk id when there is one, so
// one line is enough to act on.

/** A store URL (a --store argument or a route in an .fl file) that does not parse. */
export class StoreUrlError extends Error {
  readonly url: string;
  constructor(url: string, reason: string) {
    super(`store URL ${JSON.stringify(url)} does not parse: ${reason}`);
    this.name = 'StoreUrlError';
    this.url = url;
  }
}

/** A store failed one operation on one chunk: I/O, network, status, size, timeout. */
export class StoreError extends Error {
  readonly store: string;
  constructor(store: string, message: string) {
    super(`store ${store}: ${message}`);
    this.name = 'StoreError';
    this.store = store;
  }
}

/** A zdb namespace refused the password given in the URL (or wanted one). */
export class StoreAuthError extends StoreError {
  constructor(store: string, message: string) {
    super(store, message);
    this.name = 'StoreAuthError';
  }
}

/** An operation the store cannot do at all (writing to http). */
export class StoreReadOnlyError extends StoreError {
  constructor(store: string) {
    super(store, 'this store is read-only');
    this.name = 'StoreReadOnlyError';
  }
}

/** A chunk id outside what stores accept (they are file names and keys). */
export class ChunkIdError extends Error {
  constructor(length: number) {
    super(`a chunk id must be 1 to 64 bytes, got ${length}`);
    this.name = 'ChunkIdError';
  }
}

/** Routing: no route covers the id, or every store that should hold it failed. */
export class RouteError extends Error {
  readonly id: string;
  constructor(id: string, message: string) {
    super(`chunk ${id}: ${message}`);
    this.name = 'RouteError';
    this.id = id;
  }
}

/** A route whose byte range is not 0-255 inclusive, start <= end, or a --store argument that does not parse. */
export class RouteRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteRangeError';
  }
}
