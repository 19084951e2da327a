// Runs the DHCP server alone inside a test namespace: loads a YAML config,
// prints "dhcp ready" then every timeline event as one JSON line on stdout.
// SIGUSR1 prints the lease table, SIGUSR2 the counts of ignored packets from
// MACs without a timeline; SIGTERM closes cleanly (leases flushed).
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  // SIGTTIN takes every thread of libuv's pool for 2 s (each blocked opening a FIFO nobody writes), as a
  // crowd of file opens and reads for HTTP and TFTP would.
  process.on('SIGTTIN', () => {
    const fifo = join(tmpdir(), `zb-pool-block-${process.pid}-${Date.now()}`);
    execFileSync('mkfifo', [fifo]);
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const opened = Array.from({ length: threads }, () => open(fifo, 'r'));
    const until = Date.now() + 2000;
    process.stdout.write(`pool blocked until ${until}\n`);
    setTimeout(() => {
      closeSync(openSync(fifo, 'w'));
      void Promise.all(opened).then((handles) => Promise.all(handles.map((h) => h.close())).then(() => rm(fifo)));
    }, 2000);
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
