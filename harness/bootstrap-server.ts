// A node-facing HTTP server on loopback offering the bootstrap grammar for
// one kernel set "zos" (zos/vmlinuz + zos/initrd.img), in a folder of its own:
// shared by the bootstrap limit tests and bench/bootstrap-media.ts.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHttpServer } from '../boot/http/index.ts';
import type { BootstrapOptions } from '../boot/http/bootstrap-routes.ts';
import { MountedStore } from '../boot/store.ts';
import { BootTimeline } from '../boot/timeline.ts';
import { createSelector } from '../boot/selection.ts';
import type { Profile } from '../boot/selection.ts';
import { silentLogger } from '../boot/log.ts';

export interface BootstrapServer {
  url: string;
  /** The folder the media cache makes its own folder in. */
  cacheParent: string;
  /** Stops the server and removes the folder. */
  close(): Promise<void>;
}

/** `kernel` and `initrd` are the files' bytes; `bootstrap` adds to (or overrides) the grammar's options. */
export async function startBootstrapServer(kernel: Uint8Array, initrd: Uint8Array, bootstrap: Partial<BootstrapOptions>): Promise<BootstrapServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-bootstrap-'));
  await mkdir(path.join(dir, 'store/zos'), { recursive: true });
  await writeFile(path.join(dir, 'store/zos/vmlinuz'), kernel);
  await writeFile(path.join(dir, 'store/zos/initrd.img'), initrd);
  const profiles: Profile[] = [{ name: 'zos', kernel: 'zos/vmlinuz', initrd: ['zos/initrd.img'], args: {} }];
  const cacheParent = path.join(dir, 'cache');
  const server = await startHttpServer({
    store: new MountedStore([{ prefix: '', dir: path.join(dir, 'store') }]),
    selector: createSelector(profiles, [], []),
    timeline: new BootTimeline(),
    log: silentLogger,
    host: '127.0.0.1',
    port: 0,
    bootstrap: { profiles, cacheParent, ...bootstrap },
  });
  return {
    url: server.url,
    cacheParent,
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
