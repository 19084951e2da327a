// Pure codecs for the 0-db v2 on-disk format; no I/O here.
export * from './crc32c.ts';
export * from './errors.ts';
export * from './index-file.ts';
export * from './data-file.ts';
export * from './namespace-descriptor.ts';
export * from './cursor.ts';
