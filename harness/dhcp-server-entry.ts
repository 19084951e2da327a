// Runs the DHCP server alone inside a test namespace: loads a YAML config,
// prints "dhcp ready" then every timeline event as one JSON line on stdout.
// SIGUSR1 prints the lease table, SIGUSR2 the counts of ignored packets from
// MACs without a timeline; SIGTERM closes cleanly (leases flushed).
import { loadConfig } from '../boot/config.ts';
import { createSelector } from '../boot/selection.ts';
import { BootTimeline } from '../boot/timeline.ts';
import { createLogger } from '../boot/log.ts';
import { startDhcpServer } from '../boot/dhcp/index.ts';
import { dhcpSettings, selectionOf } from '../boot/server.ts';
import { startDhcpThread } from '../boot/dhcp/thread.ts';
import type { DhcpThread } from '../boot/dhcp/thread.ts';
import type { DhcpServer } from '../boot/dhcp/index.ts';
import { MachineLabels } from '../boot/machine-labels.ts';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: dhcp-server-entry.ts <config.yaml> [--quiet]\n');
  process.exit(2);
}
const quiet = process.argv.includes('--quiet');
try {
  const config = await loadConfig(file);
  const timeline = new BootTimeline();
  if (!quiet) timeline.subscribe((e) => process.stdout.write(JSON.stringify({ event: e }) + '\n'));
  const settings = dhcpSettings(config, config.interfaces, config.http.port);
  const labels = new MachineLabels();
  const log = createLogger({ level: quiet ? 'warn' : 'debug' });
  const threaded = config.dhcp.thread && config.dhcp.mode !== 'off';
  const thread: DhcpThread | undefined = threaded ? await startDhcpThread({ config: { settings, selection: selectionOf(config) }, labels, timeline, log }) : undefined;
  const server: DhcpServer = thread ??
    await startDhcpServer({ settings, selector: createSelector(config.profiles, config.groups, config.machines), labels, timeline, log });
  // Test hooks: SIGHUP keeps this (main) thread busy for 2 s, as a long collection or a slow handler would;
  // SIGWINCH makes the DHCP thread crash and prints "dhcp restarted" once it serves again.
  process.on('SIGHUP', () => {
    const until = Date.now() + 2000;
    process.stdout.write(`main blocked until ${until}\n`);
    while (Date.now() < until);
  });
  process.on('SIGWINCH', () => {
    if (!thread) return;
    thread.restarted().then(() => process.stdout.write('dhcp restarted\n'));
    thread.crashForTest();
  });
  process.on('SIGUSR1', () => process.stdout.write(JSON.stringify({ leases: server.leases() }) + '\n'));
  process.on('SIGUSR2', () => process.stdout.write(JSON.stringify({ ignored: timeline.ignored() }) + '\n'));
  process.on('SIGTERM', () => {
    server.close().then(
      () => process.exit(0),
      (e: Error) => {
        process.stderr.write(`error: ${e.message}\n`);
        process.exit(1);
      },
    );
  });
  process.stdout.write('dhcp ready\n');
} catch (e) {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
}
