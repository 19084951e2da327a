// The --hook program through the real server: which events run, with which
// arguments, and that the blocking ones (namespaces-init, close) hold the
// server until they return. Also the crash hook after a fatal error, and the
// network rx/tx byte counters of INFO.
import test from 'ava';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startZdb, removeDir, tempDir, runZdbProcess, freePort, RawClient } from '../helpers/zdb-process.ts';

const ADMIN = 'adminpw';

/** A hook that appends "<event> <args...>" to `log`; `close` sleeps first and then logs "close-done". */
async function loggingHook(dir: string): Promise<{ hook: string; lines: () => Promise<string[]> }> {
  const log = path.join(dir, 'hook.log');
  const hook = path.join(dir, 'hook.sh');
  await writeFile(hook, `#!/bin/sh\necho "$@" >> ${log}\nif [ "$1" = close ]; then sleep 0.5; echo close-done >> ${log}; fi\nexit 0\n`);
  await chmod(hook, 0o755);
  return { hook, lines: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean) };
}

/** Background hooks finish on their own time: wait (with a generous deadline) until `pred` holds. */
async function until(lines: () => Promise<string[]>, pred: (l: string[]) => boolean, what: string): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const l = await lines();
    if (pred(l)) return l;
    if (Date.now() > deadline) throw new Error(`${what}: hook log is\n${l.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function redis(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  return r;
}

test('hooks: namespaces-init, namespace-deleted, -reloaded, jump-index/jump-data on rotation, then close (blocking) before namespace-closing', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { hook, lines } = await loggingHook(dir);
  const s = await startZdb(['--hook', hook, '--admin', ADMIN, '--datasize', '524288'], { dir });
  t.teardown(() => void s.kill('SIGKILL'));
  const id = `tcp://127.0.0.1:${s.port}`;
  const r = redis(s.port);
  t.teardown(() => r.disconnect());

  // namespaces-init blocks the start, so it is logged before the server listens.
  t.true((await lines()).includes(`namespaces-init ${id} ${s.indexDir} ${s.dataDir}`), (await lines()).join('\n'));

  await r.call('AUTH', ADMIN);
  await r.call('NSNEW', 'gone');
  await r.call('NSDEL', 'gone');
  await r.call('NSNEW', 'kept');
  await r.call('RELOAD', 'kept');
  await until(lines, (l) => l.includes(`namespace-deleted ${id} gone`) && l.includes(`namespace-reloaded ${id} kept`), 'deleted and reloaded hooks');

  // 0.5 MiB files: the third 200 KiB value does not fit in d0, so both files jump to id 1.
  const value = Buffer.alloc(200 * 1024, 0x61);
  for (const k of ['a', 'b', 'c']) await r.call('SET', k, value);
  const i0 = path.join(s.indexDir, 'default', 'i0');
  const i1 = path.join(s.indexDir, 'default', 'i1');
  const d0 = path.join(s.dataDir, 'default', 'd0');
  const d1 = path.join(s.dataDir, 'default', 'd1');
  const jumped = await until(lines, (l) => l.some((x) => x.startsWith('jump-index')) && l.some((x) => x.startsWith('jump-data')), 'jump hooks');
  t.true(jumped.some((x) => x.startsWith(`jump-index ${id} ${i0} ${i1}`)), jumped.join('\n'));
  t.true(jumped.includes(`jump-data ${id} ${d0} ${d1}`), jumped.join('\n'));

  t.is(await s.kill('SIGTERM'), 143);
  const end = await lines();
  const close = end.indexOf(`close ${id}`);
  const done = end.indexOf('close-done');
  const closing = end.filter((l) => l.startsWith('namespace-closing'));
  t.true(close >= 0 && done > close, end.join('\n'));
  t.deepEqual(closing.sort(), [`namespace-closing ${id} default`, `namespace-closing ${id} kept`]);
  t.true(end.findIndex((l) => l.startsWith('namespace-closing')) > done, `the close hook blocks: namespaces close after it returns\n${end.join('\n')}`);
});

test('hooks: missing-data asks for a data file moved away; a hook that brings it back lets the namespace open, one that fails does not', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const first = await startZdb(['--datasize', '524288'], { dir });
  const r = redis(first.port);
  const value = Buffer.alloc(200 * 1024, 0x62);
  for (const k of ['a', 'b', 'c']) await r.call('SET', k, value);
  r.disconnect();
  await first.kill('SIGTERM');
  const d0 = path.join(first.dataDir, 'default', 'd0');
  const away = path.join(dir, 'offloaded-d0');
  await rename(d0, away);

  const log = path.join(dir, 'missing.log');
  const hook = path.join(dir, 'fetch.sh');
  // $3 is the missing file's path; the hook fetches it back only while `away` exists
  await writeFile(hook, `#!/bin/sh\necho "$@" >> ${log}\nif [ "$1" = missing-data ]; then mv ${away} "$3" || exit 1; fi\nexit 0\n`);
  await chmod(hook, 0o755);
  const s = await startZdb(['--hook', hook, '--datasize', '524288'], { dir });
  t.teardown(() => void s.kill('SIGKILL'));
  const lines = (await readFile(log, 'utf8')).split('\n');
  t.true(lines.includes(`missing-data tcp://127.0.0.1:${s.port} ${d0}`), lines.join('\n'));
  const again = redis(s.port);
  t.teardown(() => again.disconnect());
  t.deepEqual(await again.callBuffer('GET', 'a'), value);
  t.regex(s.output(), /d0 was missing: the missing-data hook brought it back/);
  await s.kill('SIGTERM');

  // moved away again, and the hook cannot bring it back (exits 1): refused, naming the file
  await rename(d0, path.join(dir, 'lost-d0'));
  const port = await freePort();
  const failed = runZdbProcess(['--listen', '127.0.0.1', '--port', String(port), '--hook', hook, '--datasize', '524288', '--data', s.dataDir, '--index', s.indexDir]);
  t.not(await failed.exited, 0);
  t.regex(failed.output(), /d0 is missing and the missing-data hook failed/);
  t.regex(failed.output(), /data file .*d0 is missing/);
});

test('hooks: a fatal error runs the crash hook and the server exits 1', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { hook, lines } = await loggingHook(dir);
  const port = await freePort();
  // The fault: a preloaded module throws from a SIGUSR2 handler, an exception nothing catches.
  const inject = 'data:text/javascript,process.on(%22SIGUSR2%22,()=%3E%7Bthrow%20new%20Error(%22injected%20fault%22)%7D)';
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${inject}` };
  const z = runZdbProcess(['--listen', '127.0.0.1', '--port', String(port), '--data', path.join(dir, 'data'), '--index', path.join(dir, 'index'), '--hook', hook], env);
  t.teardown(() => void z.proc.kill('SIGKILL'));
  const c = await (async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        return await RawClient.connect(port);
      } catch (e) {
        if (Date.now() > deadline || z.proc.exitCode !== null) throw new Error(`not listening: ${(e as Error).message}\n${z.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  c.write('*1\r\n$4\r\nPING\r\n');
  await c.waitFor('+PONG\r\n');
  c.close();
  z.proc.kill('SIGUSR2');
  t.is(await z.exited, 1, z.output());
  t.regex(z.output(), /fatal: .*injected fault/);
  const l = await until(lines, (x) => x.includes(`crash tcp://127.0.0.1:${port}`), 'crash hook');
  t.false(l.some((x) => x.startsWith('close ')), 'a crash is not a clean close');
});

/** The value of `field` in an INFO text. */
function infoField(info: string, field: string): number {
  const m = new RegExp(`^${field}: (\\S+)$`, 'm').exec(info);
  if (!m) throw new Error(`no ${field} in INFO`);
  return Number(m[1]);
}

/** Sends INFO on a raw socket; returns its text and the size of the whole reply on the wire. */
async function rawInfo(c: RawClient, from: number): Promise<{ text: string; wire: number }> {
  c.write('*1\r\n$4\r\nINFO\r\n');
  const deadline = Date.now() + 30_000;
  let m: RegExpExecArray | null;
  while (!(m = /^\$(\d+)\r\n/.exec(c.received().subarray(from).toString('latin1')))) {
    if (Date.now() > deadline) throw new Error(`no INFO reply: ${c.received().subarray(from, from + 40).toString('latin1')}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const wire = m[0].length + Number(m[1]) + 2;
  await c.waitFor(from + wire);
  return { text: c.received().subarray(from + m[0].length, from + m[0].length + Number(m[1])).toString('latin1'), wire };
}

test('INFO network_rx/tx count the bytes of every request and reply, to the byte', async (t) => {
  const s = await startZdb();
  t.teardown(async () => {
    await s.kill('SIGKILL');
    await removeDir(s.dir);
  });
  const c = await RawClient.connect(s.port);
  t.teardown(() => c.close());
  const infoCmd = '*1\r\n$4\r\nINFO\r\n';
  const first = await rawInfo(c, 0);
  const value = 'v'.repeat(300 * 1024);
  const set = `*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$${value.length}\r\n${value}\r\n`;
  const get = '*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n';
  c.write(set);
  c.write(get);
  const setReply = '$3\r\nkey\r\n';
  const getReply = `$${value.length}\r\n${value}\r\n`;
  await c.waitFor(first.wire + setReply.length + getReply.length);
  const second = await rawInfo(c, first.wire + setReply.length + getReply.length);

  // rx: the requests read up to and including the INFO being answered.
  t.is(infoField(second.text, 'network_rx_bytes') - infoField(first.text, 'network_rx_bytes'), set.length + get.length + infoCmd.length);
  // tx: replies sent before this INFO was built (its own is not counted yet).
  t.is(infoField(second.text, 'network_tx_bytes') - infoField(first.text, 'network_tx_bytes'), first.wire + setReply.length + getReply.length);
  t.true(infoField(first.text, 'network_rx_bytes') >= infoCmd.length);
  t.is(infoField(second.text, 'network_rx_mb'), Number((infoField(second.text, 'network_rx_bytes') / (1024 * 1024)).toFixed(2)));
  t.is(infoField(second.text, 'network_tx_mb'), Number((infoField(second.text, 'network_tx_bytes') / (1024 * 1024)).toFixed(2)));
});
