// The lease journal's sync thread (started by journal-sync.ts): fdatasync of
// the descriptor it is given, one request at a time, and the answer back.
import { fdatasyncSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { SyncAnswer, SyncRequest } from './journal-sync.ts';

const port = parentPort!;
port.on('message', (m: SyncRequest) => {
  try {
    const started = performance.now();
    fdatasyncSync(m.fd);
    port.postMessage({ id: m.id, ms: performance.now() - started } satisfies SyncAnswer);
  } catch (e) {
    port.postMessage({ id: m.id, error: (e as Error).message } satisfies SyncAnswer);
  }
});
