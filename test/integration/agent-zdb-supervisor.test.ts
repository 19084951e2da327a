// The supervisor runs a real `zeroboot zdb` with zos's flags; the test kills
// it with SIGKILL and sees it restarted, healthy again, with its data.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminSecretOf, zdbArgs, zdbPools, ZdbSupervisor } from '../../agent/zdb-supervisor.ts';
import { RespClient } from '../../zdb/resp/client.ts';
import { isAlive } from '../../lib/process.ts';
import { freePort } from '../../harness/listening.ts';

const ROOT = join(import.meta.dirname, '../..');

async function until(what: string, cond: () => boolean | Promise<boolean>, detail?: () => string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('zos flags, and which pools get a zdb', (t) => {
  t.deepEqual(zdbArgs({ disk: 'sdb', dir: '/mnt/L/zdb', port: 9900, socket: '/run/zdb-sdb.sock', adminSecret: 's' }), ['--protect', '--admin', 's', '--data', '/mnt/L/zdb/data', '--index', '/mnt/L/zdb/index', '--listen', '::', '--port', '9900', '--socket', '/run/zdb-sdb.sock', '--dualnet']);
  const ssd = { type: 'ssd' as const };
  const hdd = { type: 'hdd' as const };
  t.deepEqual(zdbPools([ssd, hdd, hdd, hdd, hdd], false), [hdd, hdd, hdd, hdd]);
  t.deepEqual(zdbPools([ssd, ssd], false), []);
  t.deepEqual(zdbPools([ssd, ssd], true), [ssd, ssd]);
  t.deepEqual(zdbPools([ssd, hdd], true), [hdd]);
});

test('a zdb killed with SIGKILL is restarted, healthy again, its data kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-zdb-'));
  const adminSecret = await adminSecretOf(dir);
  t.is(await adminSecretOf(dir), adminSecret, 'the secret is kept');
  const spec = { disk: 'loop9', dir: join(dir, 'zdb'), port: await freePort(), listen: '127.0.0.1', socket: join(dir, 'zdb.sock'), adminSecret };
  const sup = new ZdbSupervisor(spec, { command: [process.execPath, '--disable-warning=ExperimentalWarning', join(ROOT, 'cli/zeroboot.ts')], baseDelayMs: 200, healthIntervalMs: 60_000 });
  t.teardown(async () => {
    await sup.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  sup.start();
  await until('the first zdb to answer PING', () => sup.check(), () => JSON.stringify(sup.health()));
  const first = sup.pid!;
  const tcp = await RespClient.connect({ host: '127.0.0.1', port: spec.port });
  // --protect: the default namespace takes the admin secret as its password.
  await tcp.select('default', adminSecret);
  t.deepEqual(await tcp.command(['SET', 'k', 'before the kill']), { type: 'bulk', value: Buffer.from('k') });
  tcp.close();

  process.kill(first, 'SIGKILL');
  await until('the restart', () => sup.health().restarts === 1 && sup.pid !== undefined && sup.pid !== first);
  await until('the new zdb to answer PING', () => sup.check());
  t.like(sup.health(), { healthy: true, restarts: 1, disk: 'loop9' });
  t.is(sup.health().lastExit, 'exited SIGKILL');
  t.is(sup.health().lastError, undefined);
  const sock = await RespClient.connect({ path: spec.socket });
  await sock.select('default', adminSecret);
  t.deepEqual(await sock.command(['GET', 'k']), { type: 'bulk', value: Buffer.from('before the kill') });
  sock.close();

  const last = sup.pid!;
  await sup.stop();
  t.false(isAlive(last));
  await new Promise((r) => setTimeout(r, 500));
  t.is(sup.pid, undefined, 'no restart after stop');
  t.false(await sup.check());
});
