// The refusals of the flist format and the chunk pipeline. Each message is one
// line that names the file (or the chunk id) and what is wrong with it, so a
// command can print it as it is and exit non-zero.

/** Base of every flist refusal; commands catch this one class. */
export class FlistError extends Error {
  override name = 'FlistError';
}

/** A `.fl` file that cannot be read as an flist. */
export class FlFileError extends FlistError {
  override name = 'FlFileError';
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.file = file;
  }
}

export class NotSqliteError extends FlFileError {
  override name = 'NotSqliteError';
  constructor(file: string) {
    super(file, 'not an flist: not an SQLite file (no "SQLite format 3" header); give the path of a .fl file written by rfs or zeroboot');
  }
}

export class TruncatedFlError extends FlFileError {
  override name = 'TruncatedFlError';
  constructor(file: string, detail: string) {
    super(file, `truncated or damaged SQLite file (${detail}); fetch or pack it again`);
  }
}

export class ForeignSchemaError extends FlFileError {
  override name = 'ForeignSchemaError';
  constructor(file: string, missing: string) {
    super(file, `not an rfs flist: ${missing}; is it another program's SQLite database (a legacy .flist is a tar)?`);
  }
}

/** A block row whose id or key is not a 32-byte BLOB. */
export class BadBlockError extends FlFileError {
  override name = 'BadBlockError';
  constructor(file: string, path: string, column: 'id' | 'key', length: number | string) {
    super(file, `${path}: block ${column} is ${typeof length === 'number' ? `${length} bytes` : length}, not a 32-byte BLOB; the flist is damaged, pack it again`);
  }
}

/** An inode table that is not a tree rooted at ino 1. */
export class BadTreeError extends FlFileError {
  override name = 'BadTreeError';
  constructor(file: string, detail: string) {
    super(file, `not a tree: ${detail}; the flist is damaged, pack it again`);
  }
}

/** A route URL that does not parse, or a byte range outside 0..255. */
export class RouteError extends FlistError {
  override name = 'RouteError';
}

/** Something wrong with the writer's input (a name, a duplicate, a block of the wrong size). */
export class FlWriteError extends FlistError {
  override name = 'FlWriteError';
}

/** A chunk that fails one of the pipeline's checks; the message names the chunk id in hex. */
export class ChunkError extends FlistError {
  override name = 'ChunkError';
  readonly id: string;
  constructor(id: Buffer | string, problem: string) {
    const hex = typeof id === 'string' ? id : id.toString('hex');
    super(`chunk ${hex}: ${problem}`);
    this.id = hex;
  }
}

export class ChunkIdMismatchError extends ChunkError {
  override name = 'ChunkIdMismatchError';
  constructor(id: Buffer | string, actual: Buffer) {
    super(id, `the data hashes to ${actual.toString('hex')}, not to its id; the store holds a damaged or wrong chunk`);
  }
}

export class ChunkDecryptError extends ChunkError {
  override name = 'ChunkDecryptError';
  constructor(id: Buffer | string) {
    super(id, 'AES-256-GCM authentication failed with the key from the flist; the flist and the chunk do not belong together');
  }
}

export class ChunkDecompressError extends ChunkError {
  override name = 'ChunkDecompressError';
  constructor(id: Buffer | string, detail: string) {
    super(id, `not valid Snappy data after decryption (${detail})`);
  }
}

export class ChunkKeyMismatchError extends ChunkError {
  override name = 'ChunkKeyMismatchError';
  constructor(id: Buffer | string, actual: Buffer) {
    super(id, `the plain data hashes to ${actual.toString('hex')}, not to its key; the flist and the chunk do not belong together`);
  }
}

export class ChunkSizeError extends ChunkError {
  override name = 'ChunkSizeError';
}
