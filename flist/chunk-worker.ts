// A worker thread of flist/chunk-pool.ts: runs the chunk pipeline on the
// jobs the pool posts, one at a time, and posts back the result or the
// error's class name and fields (the pool rebuilds the typed error). A batch
// of unpack or pack ops (flist/unpack-ops.ts, pack-ops.ts) answers one result per op.
import { parentPort } from 'node:worker_threads';
import { createChunkCodec } from './chunk.ts';
import { ownBuffer, ownCopy, type WorkerJob, type WorkerReply } from './chunk-pool.ts';
import { PackOps } from './pack-ops.ts';
import { UnpackOps } from './unpack-ops.ts';

const port = parentPort;
if (port === null) throw new Error('flist/chunk-worker.ts runs as a worker thread of flist/chunk-pool.ts');
const codec = await createChunkCodec();
const ops = new UnpackOps(codec);
const packOps = new PackOps(codec);
const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

port.on('message', (job: WorkerJob) => {
  try {
    if (job.op === 'batch') {
      const transfer: ArrayBuffer[] = [];
      const results = job.ops.map((o) => {
        if (o.op !== 'pack') return ops.run(o);
        const r = packOps.run(o);
        if (!('id' in r)) return r;
        // made here and dropped after posting: moved when it has its ArrayBuffer to itself
        const data = r.data === undefined ? undefined : ownBuffer(r.data);
        if (data !== undefined) transfer.push(data.buffer);
        return { id: ownCopy(r.id), key: ownCopy(r.key), data, fresh: r.fresh };
      });
      port.postMessage({ seq: job.seq, results } satisfies WorkerReply, transfer);
    } else if (job.op === 'encode') {
      const c = codec.encode(job.plain);
      // made here and dropped after posting: moved, not copied, when it has its ArrayBuffer to itself
      const data = ownBuffer(c.data);
      port.postMessage({ seq: job.seq, encoded: { id: ownCopy(c.id), key: ownCopy(c.key), data } } as WorkerReply, [data.buffer]);
    } else {
      const plain = ownCopy(codec.decode(asBuffer(job.id), asBuffer(job.key), job.data));
      port.postMessage({ seq: job.seq, plain } satisfies WorkerReply, [plain.buffer]);
    }
  } catch (e) {
    const err = e as Error & { id?: string };
    port.postMessage({ seq: job.seq, error: { name: err.name, message: err.message, id: err.id } } satisfies WorkerReply);
  }
});
port.postMessage({ ready: true });
