// The HTTP part of the boot server: iPXE scripts and store files for nodes; the JSON API on the management listener.
export { startHttpServer, DEFAULT_TIMEOUTS } from './server.ts';
export type { HttpServer, HttpServerOptions, HttpTimeouts } from './server.ts';
export { DEFAULT_LIMITS } from './connection-limits.ts';
export type { ConnectionLimits } from './connection-limits.ts';
export { serveEntry, parseRange, contentType, bufferBudget, MAX_RANGES, CHUNK_BYTES, SMALL_CHUNK_BYTES, LARGE_BUFFER_BUDGET } from './artifacts.ts';
export type { ByteRange, BufferBudget, RangeRequest, ServeResult } from './artifacts.ts';
export { machinesPage, machineDetail, PAGE_DEFAULT, PAGE_MAX, PAGE_MAX_BYTES } from './api.ts';
export type { Lease, MachineSummary, MachineView, SelectionView } from './api.ts';
export { startManagementServer } from './management.ts';
export type { ManagementServer, ManagementOptions } from './management.ts';
export { MachineIndex } from './machine-index.ts';
export { loadApiToken, ApiTokenError, TOKEN_FILE } from './api-token.ts';
export { FlistRoutes } from './flist-routes.ts';
export type { FlistOptions } from './flist-routes.ts';
