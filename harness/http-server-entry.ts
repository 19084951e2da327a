// Standalone HTTP server for the benchmark and namespace tests, run as a
// child process. Prints "http ready url=URL port=N" on stdout, then one
// "event <json>" line per timeline event; the log goes to stderr.
//   --host H --port P --dir DIR (mount at "")  --mount PREFIX=DIR
//   --config FILE (profiles, groups and machines from a zeroboot YAML)
//   --public-url URL --log-level L
//   --max-connections N --max-per-address N --send-stall-ms MS --idle-ms MS (limits; default: the server's)
import { parseArgs } from 'node:util';
import { MountedStore } from '../boot/store.ts';
import type { Mount } from '../boot/store.ts';
import { BootTimeline } from '../boot/timeline.ts';
import { createSelector } from '../boot/selection.ts';
import { loadConfig } from '../boot/config.ts';
import { createLogger } from '../boot/log.ts';
import type { Level } from '../boot/log.ts';
import { startHttpServer } from '../boot/http/index.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    dir: { type: 'string' },
    mount: { type: 'string', multiple: true, default: [] },
    config: { type: 'string' },
    'public-url': { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    'max-connections': { type: 'string' },
    'max-per-address': { type: 'string' },
    'send-stall-ms': { type: 'string' },
    'idle-ms': { type: 'string' },
  },
});

const mounts: Mount[] = [];
if (values.dir) mounts.push({ prefix: '', dir: values.dir });
for (const m of values.mount) {
  const i = m.indexOf('=');
  if (i < 0) throw new Error(`--mount expects PREFIX=DIR, got ${m}`);
  mounts.push({ prefix: m.slice(0, i), dir: m.slice(i + 1) });
}
const config = values.config ? await loadConfig(values.config) : undefined;
if (config) mounts.push(...config.mounts);

const store = new MountedStore(mounts);
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const limits = Object.fromEntries(
  Object.entries({ maxConnections: num(values['max-connections']), maxPerAddress: num(values['max-per-address']), sendStallMs: num(values['send-stall-ms']) }).filter(
    ([, v]) => v !== undefined,
  ),
);

const timeline = new BootTimeline();
timeline.subscribe((e) => process.stdout.write(`event ${JSON.stringify(e)}\n`));
const server = await startHttpServer({
  store,
  selector: createSelector(config?.profiles ?? [], config?.groups ?? [], config?.machines ?? []),
  timeline,
  log: createLogger({ level: values['log-level'] as Level }),
  host: values.host,
  port: Number(values.port),
  publicUrl: values['public-url'],
  limits,
  timeouts: values['idle-ms'] === undefined ? undefined : { idleMs: Number(values['idle-ms']) },
});
process.stdout.write(`http ready url=${server.url} port=${server.port}\n`);

const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
