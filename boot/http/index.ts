// The HTTP part of the boot server: iPXE scripts, store files, JSON API.
export { startHttpServer, DEFAULT_TIMEOUTS } from './server.ts';
export type { HttpServer, HttpServerOptions, HttpTimeouts } from './server.ts';
export { DEFAULT_LIMITS } from './connection-limits.ts';
export type { ConnectionLimits } from './connection-limits.ts';
export { buildCmdline, cmdlineWords, CmdlineError, RunmodeError, FarmerIdError, RUNMODES, LEADING_ARGS, REFERENCE_ARGS } from './cmdline.ts';
export type { KernelArgs, Runmode } from './cmdline.ts';
export {
  renderChainScript,
  renderMachineScript,
  renderErrorScript,
  renderTemplate,
  artifactUrl,
  ipxeSafeText,
  ScriptTemplateError,
  ScriptValueError,
} from './ipxe-script.ts';
export type { MachineScriptInput, ScriptValues } from './ipxe-script.ts';
export { serveEntry, parseRange, contentType, bufferBudget, MAX_RANGES, CHUNK_BYTES, SMALL_CHUNK_BYTES, LARGE_BUFFER_BUDGET } from './artifacts.ts';
export type { ByteRange, BufferBudget, RangeRequest, ServeResult } from './artifacts.ts';
export { listMachines, machineDetail } from './api.ts';
export type { Lease, MachineView, SelectionView } from './api.ts';
