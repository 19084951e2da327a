// What the node agent takes from its kernel command line (/proc/cmdline),
// read with the house parser (lib/cmdline.ts) so a line reads as the kernel
// read it. Flags are zos's own names; the boot server's URL has no zos
// equivalent (zos finds its farm through the runmode), so it uses the
// project's `zeroboot.` prefix like the image's other /init arguments.
import { FarmerIdError, RUNMODES, RunmodeError, SERVER_ARG, parseCmdline, type Runmode } from '../lib/cmdline.ts';
import { macFromBootif } from '../lib/mac.ts';

export { SERVER_ARG };

export interface AgentCmdline {
  /** zos's runmode; `prod` when absent, as a zos node assumes. */
  runmode: Runmode;
  /** The farm the node joins; undefined when absent (the server may assign one). */
  farmerId: number | undefined;
  /** `zos-debug-vm`: behave as in a virtual machine (disk types from the rig's rule, not measured). */
  debugVm: boolean;
  /** `missing-ssd`: run with HDDs only; a zdb may then run on an SSD too. */
  missingSsd: boolean;
  /** `zos-debug`. */
  debug: boolean;
  /** Base URL of the boot server (no trailing slash), from `zeroboot.server=`. */
  server: string | undefined;
  /** MAC of the NIC the node booted from (`BOOTIF=01-aa-bb-..`), canonical form. */
  bootMac: string | undefined;
}

export class AgentCmdlineError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = 'AgentCmdlineError';
    this.key = key;
  }
}

const U32_MAX = 4_294_967_295;

function runmodeOf(value: string | null | undefined): Runmode {
  if (value === undefined) return 'prod';
  if (value === null || !(RUNMODES as readonly string[]).includes(value)) {
    throw new RunmodeError('runmode', `kernel command line: runmode must be one of ${RUNMODES.join(', ')}, got ${value === null ? 'a bare runmode' : JSON.stringify(value)}`);
  }
  return value as Runmode;
}

function farmerIdOf(value: string | null | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === null || !/^[0-9]{1,10}$/.test(value) || Number(value) > U32_MAX) {
    throw new FarmerIdError('farmer_id', `kernel command line: farmer_id must be an integer from 0 to ${U32_MAX}, got ${value === null ? 'a bare farmer_id' : JSON.stringify(value)}`);
  }
  return Number(value);
}

/** An http(s) base URL without credentials, query or fragment; returned without a trailing slash. */
export function serverUrlOf(value: string | null | undefined, where = `kernel command line: ${SERVER_ARG}`): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    if (value === null) throw new Error('bare');
    url = new URL(value);
  } catch {
    throw new AgentCmdlineError(SERVER_ARG, `${where} must be an http:// or https:// URL such as http://10.0.0.1:8080, got ${value === null ? 'nothing' : JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AgentCmdlineError(SERVER_ARG, `${where} must use http or https, got ${url.protocol.slice(0, -1)}`);
  if (url.username || url.password || url.search || url.hash) throw new AgentCmdlineError(SERVER_ARG, `${where} must be a plain base URL (no user, password, query or fragment)`);
  return url.href.replace(/\/+$/, '');
}

function bootMacOf(value: string | null | undefined): string | undefined {
  if (value === undefined) return undefined;
  const mac = value === null ? undefined : macFromBootif(value);
  if (!mac) throw new AgentCmdlineError('BOOTIF', `kernel command line: BOOTIF must be 01- and the hyphenated MAC (01-aa-bb-cc-dd-ee-ff), got ${value === null ? 'a bare BOOTIF' : JSON.stringify(value)}`);
  return mac;
}

/** The agent's settings from a kernel command line; throws one typed error naming the bad argument. */
export function agentCmdline(line: string): AgentCmdline {
  const args = parseCmdline(line);
  // Object.hasOwn: a command line may well hold a word such as `constructor`.
  const get = (key: string): string | null | undefined => (Object.hasOwn(args, key) ? (args[key] as string | null) : undefined);
  return {
    runmode: runmodeOf(get('runmode')),
    farmerId: farmerIdOf(get('farmer_id')),
    debugVm: get('zos-debug-vm') !== undefined,
    missingSsd: get('missing-ssd') !== undefined,
    debug: get('zos-debug') !== undefined,
    server: serverUrlOf(get(SERVER_ARG)),
    bootMac: bootMacOf(get('BOOTIF')),
  };
}

/** The running kernel's settings (the path is a parameter for tests). */
export async function readAgentCmdline(path = '/proc/cmdline'): Promise<AgentCmdline> {
  const { readFile } = await import('node:fs/promises');
  return agentCmdline(await readFile(path, 'utf8'));
}
