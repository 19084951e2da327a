// A worker thread of flist/chunk-pool.ts: runs the chunk pipeline on the
// jobs the pool posts, one at a time, and posts back the result or the
// error's class name and fields (the pool rebuilds the typed error).
import { parentPort } from 'node:worker_threads';
import { createChunkCodec } from './chunk.ts';
import type { WorkerJob, WorkerReply } from './chunk-pool.ts';

const port = parentPort;
if (port === null) throw new Error('flist/chunk-worker.ts runs as a worker thread of flist/chunk-pool.ts');
const codec = await createChunkCodec();
const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

port.on('message', (job: WorkerJob) => {
  let reply: WorkerReply;
  try {
    if (job.op === 'encode') {
      reply = { seq: job.seq, encoded: codec.encode(job.plain) };
    } else {
      reply = { seq: job.seq, plain: codec.decode(asBuffer(job.id), asBuffer(job.key), job.data) };
    }
  } catch (e) {
    const err = e as Error & { id?: string };
    reply = { seq: job.seq, error: { name: err.name, message: err.message, id: err.id } };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });
