// An HTTP boot server on loopback over one store folder, with its own
// timeline, stopped when the test ends: what the HTTP limit and sendfile
// tests each start with their own options.
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { createSelector } from '../../boot/selection.ts';
import { silentLogger } from '../../boot/log.ts';
import { startHttpServer } from '../../boot/http/index.ts';
import type { HttpServer, HttpServerOptions } from '../../boot/http/index.ts';

export async function startStoreServer(
  t: { teardown(fn: () => Promise<void>): void },
  dir: string,
  extra: Partial<HttpServerOptions> = {},
): Promise<HttpServer & { timeline: BootTimeline }> {
  const timeline = new BootTimeline();
  const s = await startHttpServer({
    store: new MountedStore([{ prefix: '', dir }]),
    selector: createSelector([], [], []),
    timeline,
    log: silentLogger,
    host: '127.0.0.1',
    port: 0,
    ...extra,
  });
  t.teardown(() => s.close());
  return { ...s, timeline };
}
