// A server whose output pipe loses its reader (`zeroboot zdb --verbose | head`,
// a log collector that died) keeps serving: the output is dropped, not the
// clients. Before lib/stdio.ts the first log line after that was an
// unhandled EPIPE with a stack trace, and the server was gone.
import test from 'ava';
import { RespClient } from '../../zdb/resp/client.ts';
import { removeDir, startZdb } from '../helpers/zdb-process.ts';

test('zdb --verbose keeps serving after its stdout reader goes away', async (t) => {
  const z = await startZdb(['--verbose']);
  t.teardown(async () => {
    await z.kill('SIGKILL');
    await removeDir(z.dir);
  });
  z.proc.stdout!.destroy();
  // Each connection, command and disconnection is logged in verbose mode: writes into the dead pipe.
  for (let i = 0; i < 5; i++) {
    const c = await RespClient.connect({ host: '127.0.0.1', port: z.port }, { commandTimeoutMs: 30_000 });
    t.deepEqual(await c.command(['SET', `k${i}`, `v${i}`]), { type: 'bulk', value: Buffer.from(`k${i}`) });
    c.close();
  }
  const c = await RespClient.connect({ host: '127.0.0.1', port: z.port }, { commandTimeoutMs: 30_000 });
  t.deepEqual(await c.command(['GET', 'k4']), { type: 'bulk', value: Buffer.from('v4') });
  c.close();
  t.is(z.proc.exitCode, null, 'the server is still running');
  t.notRegex(z.output(), /EPIPE|Unhandled/);
});
