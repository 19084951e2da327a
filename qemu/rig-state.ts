// What a running rig leaves on disk so another process can tear it down
// (`zeroboot qemu down` after a crash or a kill -9): the namespace, the pids
// it started and its work directory. Pids are checked against their command
// line before they are killed, so a recycled pid is left alone.
import { mkdir, readFile, readdir, rm, writeFile, rename } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Netns } from './netns.ts';
import { isRunning, killPid, waitUntilGone } from '../lib/process.ts';

export class RigStateError extends Error {}

/** Default folder for rig state files. */
export const RIG_STATE_DIR = '/run/zeroboot/qemu';

export interface RigState {
  namespace: string;
  /** The process that owns the rig (`zeroboot qemu up`, a test worker). */
  ownerPid: number;
  /** QEMU, server and dnsmasq pids. */
  pids: number[];
  workDir: string;
  logDir: string;
  serverUrl?: string;
  startedAt: string;
}

export async function writeRigState(file: string, state: RigState): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await rename(tmp, file);
}

function isState(v: unknown): v is RigState {
  const s = v as RigState;
  return typeof s === 'object' && s !== null && typeof s.namespace === 'string' && Array.isArray(s.pids) && typeof s.workDir === 'string';
}

export async function readRigStates(dir = RIG_STATE_DIR): Promise<{ file: string; state: RigState }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new RigStateError(`cannot read ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const out: { file: string; state: RigState }[] = [];
  for (const n of names.filter((n) => n.endsWith('.json')).sort()) {
    const file = path.join(dir, n);
    try {
      const state = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (isState(state)) out.push({ file, state });
      else throw new Error('not a rig state');
    } catch (e) {
      throw new RigStateError(`${file}: ${(e as Error).message}; remove it by hand`);
    }
  }
  return out;
}

/** True when `pid` runs one of the programs a rig starts. */
export function isRigProcess(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /qemu-system|zeroboot|dnsmasq|nginx/.test(cmd);
  } catch {
    return false;
  }
}

/**
 * Tears down what a state file describes: asks a live owner to stop first
 * (SIGTERM, it cleans up itself), then kills recorded pids, deletes the
 * namespace and the work directory. Returns what it did, for the user.
 */
export async function cleanupRig(file: string, state: RigState, opts: { graceMs?: number } = {}): Promise<string[]> {
  const done: string[] = [];
  if (state.ownerPid !== process.pid && isRunning(state.ownerPid) && /zeroboot|node/.test(safeCmdline(state.ownerPid))) {
    killPid(state.ownerPid, 'SIGTERM');
    await waitUntilGone([state.ownerPid], opts.graceMs ?? 10_000);
    done.push(`asked owner ${state.ownerPid} to stop`);
  }
  const killed = state.pids.filter((pid) => isRunning(pid) && isRigProcess(pid) && killPid(pid));
  // Reported killed only once gone: a server's threads and memory take a moment to go after SIGKILL.
  const stuck = new Set(await waitUntilGone(killed, opts.graceMs ?? 10_000));
  for (const pid of killed) done.push(stuck.has(pid) ? `killed ${pid}, still exiting` : `killed ${pid}`);
  if (existsSync(`/run/netns/${state.namespace}`)) {
    await Netns.attach(state.namespace).destroy();
    done.push(`deleted namespace ${state.namespace}`);
  }
  if (state.workDir.includes('zeroboot-rig')) await rm(state.workDir, { recursive: true, force: true });
  await rm(file, { force: true });
  return done;
}

function safeCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
