// The DHCP thread's entry (started by thread.ts): the whole DHCP server
// (sockets, decisions, replies, the lease journal with its own sync thread,
// or its own PostgreSQL pool) on this thread's event loop and libuv pool, so HTTP,
// TFTP and the main thread's collections cannot delay a reply. What the
// main thread shows (timeline, labels, log, leases) goes there in batches.
import { parentPort, workerData } from 'node:worker_threads';
import { createSelector } from '../selection.ts';
import type { Labels } from '../selection.ts';
import { MachineLabels } from '../machine-labels.ts';
import { startDhcpServer, DhcpServerError } from './server.ts';
import type { LocalDhcpServer } from './server.ts';
import { EventBatcher } from './thread-batch.ts';
import type { FromWorker, ToWorker, WorkerConfig } from './thread-messages.ts';
import { raiseThreadPriority } from '../../lib/thread-priority.ts';

/** The DHCP thread's nice value, when the process may take it. */
const DHCP_NICE = -10;

/** Leases change without a packet too (offers time out; with PostgreSQL, other servers' rows): the listing is re-sent this often. */
const LEASES_REFRESH_MS = 10_000;

const port = parentPort!;
const config = workerData as WorkerConfig;
const send = (m: FromWorker) => port.postMessage(m);
let server: LocalDhcpServer | undefined;
const batch = new EventBatcher(send, () => server?.leases() ?? []);
// A copy of the main thread's labels: DHCP's changes go there, HTTP's come from there.
const labels = new MachineLabels();
let learning = false;
const learn = (mac: string, l: Labels) => {
  learning = true;
  labels.note(mac, l);
  learning = false;
};
for (const [mac, l] of config.labels) learn(mac, l);
labels.subscribe((mac, l) => {
  if (!learning) batch.labels(mac, l);
});

// The addon's poll handles are not Node's: a thread ending with them open aborts the whole process.
// So an uncaught exception stops the sockets first, tells the main thread, and ends the thread a moment later.
process.on('uncaughtException', (e) => {
  server?.abort();
  batch.flush(true);
  send({ type: 'crashed', error: e instanceof Error ? e.message : String(e) });
  setTimeout(() => process.exit(1), 50);
});

port.on('message', (m: ToWorker) => {
  if (m.type === 'ack') return batch.acked();
  if (m.type === 'labels') return learn(m.mac, m.labels);
  if (m.type === 'crash') {
    // The test hook: an exception nothing catches, as a bug would throw.
    setImmediate(() => {
      throw new Error('DHCP thread crash requested by a test');
    });
    return;
  }
  if (m.type === 'close') {
    const done = () => {
      batch.flush(true);
      send({ type: 'closed' });
    };
    (server?.close() ?? Promise.resolve()).then(done, (e: Error) => {
      batch.logger().error('dhcp: close failed', { error: e.message });
      done();
    });
  }
});

// DHCP answers go before file transfers when both want the CPU: in a 1,000-machine storm on 2 cores this
// thread at the main thread's priority waited up to 57 ms for a CPU between a REQUEST and its ACK.
// Raising a thread's priority takes CAP_SYS_NICE or an RLIMIT_NICE allowing it (the unit's LimitNICE).
// Raised before the server starts: the lease journal's sync thread, started with it, inherits the priority
// (an ACK waits for that thread too).
const priority = raiseThreadPriority(DHCP_NICE);
if (priority.error) {
  batch.logger().info('dhcp thread runs at the process priority: allow nice -10 (LimitNICE=-10 or CAP_SYS_NICE) to answer DHCP before file transfers', { nice: priority.nice, error: priority.error });
} else batch.logger().debug('dhcp thread priority', { nice: priority.nice });

try {
  const { profiles, groups, machines } = config.selection;
  server = await startDhcpServer({
    settings: config.settings,
    selector: createSelector(profiles, groups, machines),
    labels,
    timeline: batch,
    log: batch.logger(),
    ownThread: true,
  });
  const refresh = setInterval(() => {
    batch.leasesDirty = true;
    batch.flush();
  }, LEASES_REFRESH_MS);
  refresh.unref();
  // The log lines of the start go first, then the listing the main thread seeds from.
  batch.flush(true);
  send({ type: 'ready', leases: server.leases() });
} catch (e) {
  batch.flush(true);
  send({ type: 'failed', message: e instanceof Error ? e.message : String(e), dhcpError: e instanceof DhcpServerError });
}
