// The node agent brought up on this host (test/integration/agent-*.test.ts):
// loop devices as its only disks, pools and sockets under the test's folder,
// `zeroboot zdb` from this checkout, no systeminformation.
import { join } from 'node:path';
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
