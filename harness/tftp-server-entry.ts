// Standalone TFTP server for tests and the benchmark, run as a child process
// inside a network namespace. Prints "tftp ready port=N" on stdout, then one
// "event <json>" line per timeline event; the log goes to stderr.
//   --address A --port P --dir DIR (mount at "")  --mount PREFIX=DIR
//   --mem PREFIX=FILE (file loaded into an in-memory mount under PREFIX)
//   --max-transfers N --timeout-ms MS --retries N --mtu N --log-level L
//   --data-path auto|native|js
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MountedStore } from '../boot/store.ts';
import type { Mount } from '../boot/store.ts';
import { BootTimeline } from '../boot/timeline.ts';
import { createLogger } from '../boot/log.ts';
import type { Level } from '../boot/log.ts';
import { startTftpServer } from '../boot/tftp/index.ts';

const { values } = parseArgs({
  options: {
    address: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string', default: '69' },
    dir: { type: 'string' },
    mount: { type: 'string', multiple: true, default: [] },
    mem: { type: 'string', multiple: true, default: [] },
    'max-transfers': { type: 'string', default: '50' },
    'timeout-ms': { type: 'string', default: '1000' },
    retries: { type: 'string', default: '5' },
    mtu: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'data-path': { type: 'string', default: 'auto' },
  },
});

function pair(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i < 0) throw new Error(`expected PREFIX=PATH, got ${s}`);
  return [s.slice(0, i), s.slice(i + 1)];
}

const mounts: Mount[] = [];
if (values.dir) mounts.push({ prefix: '', dir: values.dir });
for (const m of values.mount) {
  const [prefix, dir] = pair(m);
  mounts.push({ prefix, dir });
}
for (const m of values.mem) {
  const [prefix, file] = pair(m);
  mounts.push({ prefix, files: { [path.basename(file)]: readFileSync(file) } });
}

const timeline = new BootTimeline();
timeline.subscribe((e) => process.stdout.write(`event ${JSON.stringify(e)}\n`));
const server = await startTftpServer({
  store: new MountedStore(mounts),
  address: values.address,
  port: Number(values.port),
  mtu: values.mtu ? Number(values.mtu) : undefined,
  maxTransfers: Number(values['max-transfers']),
  timeoutMs: Number(values['timeout-ms']),
  retries: Number(values.retries),
  timeline,
  log: createLogger({ level: values['log-level'] as Level }),
  dataPath: values['data-path'] as 'auto' | 'native' | 'js',
});
process.stdout.write(`tftp ready port=${server.port}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
