// The DHCP server on its own worker thread (server.dhcp.thread), seen from
// the main thread through the same DhcpServer interface. The worker
// (thread-worker.ts) answers; this side replays its batches into the shared
// timeline, labels and log, and keeps the last lease listing it sent. A
// worker that dies is logged in one line and started again after a backoff;
// serve keeps running meanwhile (DHCP is silent until it is back).
import { Worker } from 'node:worker_threads';
import type { BootTimeline } from '../timeline.ts';
import type { MachineLabels } from '../machine-labels.ts';
import type { Logger } from '../log.ts';
import type { LeaseInfo } from './leases.ts';
import { DhcpServerError } from './sockets.ts';
import type { DhcpServer } from './server.ts';
import type { Entry, FromWorker, ToWorker, WorkerConfig } from './thread-messages.ts';

const ENTRY = new URL('./thread-worker.ts', import.meta.url);
/** How long a closing worker may take to flush its leases before it is stopped. */
const CLOSE_MS = 15_000;

export interface DhcpThreadOptions {
  config: Omit<WorkerConfig, 'labels'>;
  labels: MachineLabels;
  timeline: BootTimeline;
  log: Logger;
  /** Restart backoff: the first wait, doubled per crash up to `maxMs`, back to `minMs` after `stableMs` up. */
  restart?: { minMs: number; maxMs: number; stableMs: number };
}

/** The threaded server: a DhcpServer, plus a test hook that makes the worker throw. */
export interface DhcpThread extends DhcpServer {
  crashForTest(): void;
  /** Resolves once a worker started after the last crash is serving. */
  restarted(): Promise<void>;
}

export async function startDhcpThread(opts: DhcpThreadOptions): Promise<DhcpThread> {
  const { timeline, labels, log } = opts;
  const backoff = opts.restart ?? { minMs: 100, maxMs: 10_000, stableMs: 30_000 };
  let leases: LeaseInfo[] = [];
  let worker: Worker | undefined;
  /** Asks the serving worker to close (leases flushed) and waits for it. */
  let stopWorker: (() => Promise<void>) | undefined;
  let closing = false;
  let delay = backoff.minMs;
  let retry: NodeJS.Timeout | undefined;
  let waiters: (() => void)[] = [];
  // Label changes go both ways; the ones the worker sent are not sent back.
  let replaying = false;
  const stopLabels = labels.subscribe((mac, l) => {
    if (!replaying) worker?.postMessage({ type: 'labels', mac, labels: l } satisfies ToWorker);
  });

  const replay = (m: Extract<FromWorker, { type: 'batch' }>) => {
    for (const e of JSON.parse(m.entries) as Entry[]) {
      switch (e[0]) {
        case 'event':
          timeline.record(e[1], e[2], e[3] ?? undefined, e[4] ?? undefined, e[5]);
          break;
        case 'ignored':
          timeline.recordIgnored(e[1], e[2], e[3], e[4] ?? undefined, e[5]);
          break;
        case 'labels':
          replaying = true;
          labels.note(e[1], e[2]);
          replaying = false;
          break;
        case 'log':
          log[e[1]](e[2], e[3] ?? undefined);
          break;
      }
    }
    if (m.dropped > 0) log.warn('dhcp: the main thread fell behind the DHCP thread; timeline events were dropped', { dropped: m.dropped });
    if (m.leases) leases = m.leases;
  };

  /** One worker, resolved once it serves; a crash after that schedules the next. */
  const spawn = () =>
    new Promise<void>((resolve, reject) => {
      const data: WorkerConfig = { ...opts.config, labels: [...labels.entries()] };
      const w = new Worker(ENTRY, { workerData: data });
      let ready = false;
      let startedAt = 0;
      let lastError = '';
      let onClosed: (() => void) | undefined;
      w.on('message', (m: FromWorker) => {
        if (m.type === 'batch') {
          replay(m);
          w.postMessage({ type: 'ack' } satisfies ToWorker);
        } else if (m.type === 'ready') {
          leases = m.leases;
          ready = true;
          startedAt = Date.now();
          worker = w;
          stopWorker = graceful;
          resolve();
        } else if (m.type === 'failed') {
          lastError = m.message;
          void w.terminate();
          reject(m.dhcpError ? new DhcpServerError(m.message) : new Error(m.message));
        } else if (m.type === 'crashed') {
          lastError = m.error;
        } else if (m.type === 'closed') {
          onClosed?.();
        }
      });
      w.on('error', (e) => {
        lastError = e.message;
      });
      w.on('exit', (code) => {
        if (worker === w) {
          worker = undefined;
          stopWorker = undefined;
        }
        if (!ready) return reject(new DhcpServerError(`the DHCP thread stopped before serving (exit code ${code}${lastError ? `: ${lastError}` : ''})`));
        if (closing) return;
        if (Date.now() - startedAt >= backoff.stableMs) delay = backoff.minMs;
        log.error('dhcp: the DHCP thread stopped; restarting it', { error: lastError || `exit code ${code}`, inMs: delay });
        scheduleRestart();
      });
      const graceful = () =>
        new Promise<void>((done) => {
          const timer = setTimeout(done, CLOSE_MS);
          onClosed = () => {
            clearTimeout(timer);
            done();
          };
          w.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          w.postMessage({ type: 'close' } satisfies ToWorker);
        });
    });

  const scheduleRestart = () => {
    const wait = delay;
    delay = Math.min(backoff.maxMs, delay * 2);
    retry = setTimeout(() => {
      retry = undefined;
      if (closing) return;
      spawn().then(
        () => {
          for (const w of waiters) w();
          waiters = [];
        },
        (e: Error) => {
          if (closing) return;
          log.error('dhcp: the DHCP thread did not start again; retrying', { error: e.message, inMs: delay });
          scheduleRestart();
        },
      );
    }, wait);
  };

  await spawn();
  return {
    leases: () => leases,
    eachLease: () => leases,
    crashForTest: () => worker?.postMessage({ type: 'crash' } satisfies ToWorker),
    restarted: () => new Promise<void>((resolve) => waiters.push(resolve)),
    async close() {
      if (closing) return;
      closing = true;
      stopLabels();
      if (retry) clearTimeout(retry);
      const w = worker;
      if (!w) return;
      await stopWorker?.();
      await w.terminate();
    },
  };
}
