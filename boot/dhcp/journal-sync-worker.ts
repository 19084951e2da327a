// The lease journal's sync thread (started by journal-sync.ts): fdatasync of
// the descriptor it is given, one request at a time, and the answer back.
import { parentPort } from 'node:worker_threads';
import { syncHere } from './journal-sync.ts';
import type { SyncAnswer, SyncRequest } from './journal-sync.ts';

const port = parentPort!;
port.on('message', (m: SyncRequest) => {
  try {
    port.postMessage({ id: m.id, ms: syncHere(m.fd) } satisfies SyncAnswer);
  } catch (e) {
    port.postMessage({ id: m.id, error: (e as Error).message } satisfies SyncAnswer);
  }
});
