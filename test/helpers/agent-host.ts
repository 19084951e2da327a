// The node agent brought up on this host (test/integration/agent-*.test.ts):
// loop devices as its only disks, pools and sockets under the test's folder,
// `zeroboot zdb` from this checkout, no systeminformation.
import { execFileSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { parseMountinfo } from '../../agent/disks/users.ts';
import type { AgentOptions } from '../../agent/run.ts';
import { agentCmdline } from '../../agent/cmdline.ts';
import { freePortPair } from '../../harness/listening.ts';

const ROOT = join(import.meta.dirname, '../..');
const MiB = 1024 * 1024;

/** Options for an agent on `devices` that reports to `server`; `cmdline` adds kernel arguments (runmode=dev is set). */
export async function hostAgentOptions(dir: string, server: string, devices: string[], cmdline = ''): Promise<AgentOptions> {
  return {
    cmdline: agentCmdline(`runmode=dev ${cmdline} zeroboot.server=${server}`),
    mountRoot: join(dir, 'mnt'),
    runDir: join(dir, 'run'),
    zeroboot: [process.execPath, '--disable-warning=ExperimentalWarning', join(ROOT, 'cli/zeroboot.ts')],
    // zdb ports basePort and basePort + 1, both free now.
    basePort: await freePortPair(),
    systeminformation: false,
    allowLoop: true,
    onlyDevices: devices,
    minDiskBytes: 128 * MiB,
    // A PING may wait seconds on a loaded 2-core machine; a report must not call a live zdb unhealthy for that.
    supervisor: { healthIntervalMs: 60_000, baseDelayMs: 200, pingTimeoutMs: 30_000 },
  };
}

/** Unmounts everything mounted under `dir` (a test's pools), deepest first. */
export function unmountUnder(dir: string): void {
  const ours = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(`${dir}/`));
  for (const m of ours.reverse()) execFileSync('umount', [m.mountPoint]);
}

/** Starts `server` on a free loopback port; its base URL. */
export async function listenLocal(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** Polls `get` every 50 ms until it gives a value; throws after `ms`. */
export async function until<T>(what: string, get: () => T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A new sparse file of `bytes` at `file` behind a loop device; the device's path. */
export function loopOn(file: string, bytes: number): string {
  writeFileSync(file, '');
  truncateSync(file, bytes);
  return execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
}
