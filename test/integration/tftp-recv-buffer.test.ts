// The TFTP listening socket's receive buffer: a rack powering on sends
// hundreds of requests at once, more than the kernel's default (about
// 200 KiB) holds while the server's loop is busy. Read with ss(8).
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { MountedStore } from '../../boot/store.ts';
import { BootTimeline } from '../../boot/timeline.ts';
import { silentLogger } from '../../boot/log.ts';
import { startTftpServer } from '../../boot/tftp/index.ts';

test('the listening socket asks for a 4 MiB receive buffer', async (t) => {
  const rmemMax = Number(await readFile('/proc/sys/net/core/rmem_max', 'utf8'));
  const server = await startTftpServer({ store: new MountedStore([]), address: '127.0.0.1', port: 0, mtu: 1500, maxTransfers: 1, timeoutMs: 200, retries: 1, timeline: new BootTimeline(), log: silentLogger });
  t.teardown(() => server.close());
  const { stdout } = await promisify(execFile)('ss', ['-uanm', `sport = :${server.port}`]);
  const rb = Number(/skmem:\([^)]*\brb(\d+)/.exec(stdout)?.[1]);
  t.log(`rb ${rb}, rmem_max ${rmemMax}`);
  // The kernel doubles what it is asked for (bookkeeping), capped at rmem_max.
  t.true(rb >= 2 * Math.min(4 * 1024 * 1024, rmemMax), `receive buffer ${rb} bytes`);
});
