// The DHCP server on its own thread (server.dhcp.thread): replies do not
// wait for a busy main thread, and a crashed DHCP thread is started again
// with its leases. The server is the harness's child process; its test
// hooks are signals (harness/dhcp-server-entry.ts).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { chmod, writeFile } from 'node:fs/promises';
import { Netns } from '../helpers/netns.ts';
import { probe, startDhcp, tempDir, udhcpc, udhcpcScript } from '../helpers/dhcp-harness.ts';
import type { ServerHandle } from '../helpers/dhcp-harness.ts';
import { threadNices } from '../helpers/thread-nice.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const SERVER = '10.51.0.1';

async function rig(t: ExecutionContext, thread: boolean, extra: { authoritative?: boolean; wrap?: string[] } = {}) {
  const ns = await Netns.create('zbt');
  const tmp = await tempDir();
  t.teardown(async () => {
    await ns.destroy();
    await tmp.remove();
  });
  await ns.bridge('br0', `${SERVER}/24`);
  const dir = tmp.dir;
  const server = await startDhcp(ns, dir, {
    server: {
      address: SERVER,
      interfaces: ['br0'],
      dhcp: { mode: 'full', thread, authoritative: extra.authoritative ?? false, leasesFile: join(dir, 'leases.json'), pool: { start: '10.51.0.100', end: '10.51.0.150', subnetMask: '255.255.255.0' } },
      http: { port: 8080 },
      stateDir: dir,
    },
  }, extra.wrap ? { wrap: extra.wrap } : {});
  t.teardown(() => server.stop().then(() => undefined));
  return { ns, server: Object.assign(server, { dir }), script: await udhcpcScript(dir) };
}

function waitOutput(server: ServerHandle, re: RegExp, timeoutMs = 60_000, from = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (re.test(server.output().slice(from))) return resolve();
      if (Date.now() > deadline) return reject(new Error(`no ${re} in the server's output:\n${server.output().slice(-3000)}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/**
 * Warms the server with one client (first MAC), then sends `signal` (a hook of
 * harness/dhcp-server-entry.ts that blocks something for 2 s and prints
 * "<said> <epoch ms it ends>") and checks that a second client (second MAC)
 * is bound before the block ends. The times are the client's own (udhcpc runs
 * its script at start and when bound), so a busy test process cannot blur
 * them; on a loaded machine the client may start only after the block, and
 * then the block is asked for again.
 */
async function boundWhileBlocked(t: ExecutionContext, ns: Netns, server: ServerHandle & { dir: string }, script: string, macs: [string, string], signal: NodeJS.Signals, said: string): Promise<void> {
  const warm = await udhcpc(await ns.host('br0', { mac: macs[0] }), script, []);
  t.truthy(warm.bound, warm.output);
  const host = await ns.host('br0', { mac: macs[1] });
  const clocked = join(server.dir, `clocked-${signal}.sh`);
  await writeFile(clocked, `#!/bin/sh\necho "AT $1 $(date +%s%3N)"\nexec ${script} "$@"\n`);
  await chmod(clocked, 0o755);
  const line = new RegExp(`^${said} (\\d+)$`, 'm');
  for (let attempt = 1; ; attempt++) {
    const seen = server.output().length;
    server.child.kill(signal);
    await waitOutput(server, line, 60_000, seen);
    const until = Number(line.exec(server.output().slice(seen))![1]);
    const r = await udhcpc(host, clocked, []);
    t.truthy(r.bound, r.output);
    const at = (event: string) => Number(new RegExp(`^AT ${event} (\\d+)$`, 'm').exec(r.output)?.[1]);
    if (at('deconfig') >= until - 200 && attempt < 3) {
      t.log(`attempt ${attempt}: the client started ${at('deconfig') - until} ms after the block ended; again`);
      continue;
    }
    t.true(at('bound') < until, `bound ${at('bound') - until} ms after the block ended (started ${until - at('deconfig')} ms before)`);
    return;
  }
}

test('a main thread busy for 2 s does not delay the DHCP exchange: the ACK comes while it is still busy', async (t) => {
  const { ns, server, script } = await rig(t, true);
  await boundWhileBlocked(t, ns, server, script, ['52:54:00:bb:00:01', '52:54:00:bb:00:02'], 'SIGHUP', 'main blocked until');
  // The events the main thread missed while busy reach its timeline afterwards.
  await server.waitEvent((e) => e.mac === '52:54:00:bb:00:02' && e.kind === 'dhcp.ack');
});

test('a libuv pool busy for 2 s (file work of HTTP and TFTP) does not delay the ACK: the DHCP thread syncs its lease journal itself', async (t) => {
  const { ns, server, script } = await rig(t, true);
  await boundWhileBlocked(t, ns, server, script, ['52:54:00:bb:02:01', '52:54:00:bb:02:02'], 'SIGTTIN', 'pool blocked until');
});

test('a crashed DHCP thread is logged in one line, started again, and serves with the leases it had', async (t) => {
  const { ns, server, script } = await rig(t, true);
  const first = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:01:01' }), script, []);
  t.truthy(first.bound, first.output);
  server.child.kill('SIGWINCH');
  await waitOutput(server, /^dhcp restarted$/m);
  const crashLines = server.output().split('\n').filter((l) => l.includes('the DHCP thread stopped'));
  t.is(crashLines.length, 1, server.output());
  t.regex(crashLines[0], /crash requested by a test/);
  const second = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:01:02' }), script, []);
  t.truthy(second.bound, second.output);
  t.not(second.bound!.ip, first.bound!.ip, 'the restarted thread knows the lease given before the crash');
  const leases = await server.leases();
  t.like(leases.find((l) => l.mac === '52:54:00:bb:01:01'), { ip: first.bound!.ip, state: 'bound' });
  t.like(leases.find((l) => l.mac === '52:54:00:bb:01:02'), { ip: second.bound!.ip, state: 'bound' });
});

test('the DHCP thread (and its lease journal\'s sync thread) run at nice -10, the rest of the server at its own priority: DHCP answers go before file transfers', async (t) => {
  const { ns, server, script } = await rig(t, true);
  const got = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:00:09' }), script, []);
  t.truthy(got.bound, got.output);
  const nices = await threadNices(server.child.pid!);
  t.is(nices.filter((n) => n === -10).length, 2, `two threads at -10: ${nices.join(' ')}`);
  t.true(nices.filter((n) => n !== -10).every((n) => n === 0), `the others at 0: ${nices.join(' ')}`);
});

test('without its own thread (server.dhcp.thread: false) no thread of the server changes priority', async (t) => {
  const { ns, server, script } = await rig(t, false);
  const got = await udhcpc(await ns.host('br0', { mac: '52:54:00:bb:00:0a' }), script, []);
  t.truthy(got.bound, got.output);
  t.deepEqual([...new Set(await threadNices(server.child.pid!))], [0]);
});

test('a disk slow to sync (each fdatasync 1.5 s) holds only the ACKs waiting for it: another client\'s OFFER comes meanwhile', async (t) => {
  const tmp = await tempDir();
  t.teardown(() => tmp.remove());
  const shim = join(tmp.dir, 'slow-sync.so');
  await promisify(execFile)('cc', ['-shared', '-fPIC', '-o', shim, join(import.meta.dirname, '../helpers/slow-sync-preload.c'), '-ldl']);
  const { ns } = await rig(t, true, { authoritative: true, wrap: ['env', `LD_PRELOAD=${shim}`, 'ZB_SLOW_SYNC_MS=1500'] });
  const host = await ns.host('br0');
  // A REQUEST the authoritative server ACKs after its lease is on disk, then a DISCOVER from another client;
  // twice: the first sync shows the disk is slow, and the second must not go back to the DHCP thread.
  for (const [round, ip] of [[1, '0a330078'], [2, '0a330079']] as const) {
    const [a, b] = [0x7300 + 2 * round, 0x7301 + 2 * round];
    const replies = await probe(host, {
      to: { address: '255.255.255.255', port: 67 },
      waitMs: 20_000,
      expect: 2,
      gapMs: 100,
      packets: [
        { mac: `52:54:00:bb:03:${round}1`, xid: a, options: { 53: '03', 50: ip } },
        { mac: `52:54:00:bb:03:${round}2`, xid: b, options: { 53: '01' } },
      ],
    });
    const ack = replies.find((r) => r.xid === a);
    const offer = replies.find((r) => r.xid === b);
    t.is(ack?.options['53'], '05', `round ${round}: ${JSON.stringify(replies)}`);
    t.is(offer?.options['53'], '02', `round ${round}: ${JSON.stringify(replies)}`);
    t.true(ack!.atMs >= 1400, `round ${round}: the ACK waited for its sync: ${ack!.atMs} ms`);
    t.true(offer!.atMs < ack!.atMs - 500, `round ${round}: the OFFER (${offer!.atMs} ms) did not wait for the ACK's sync (${ack!.atMs} ms)`);
  }
});
