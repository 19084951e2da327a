// The lease journal from outside: an ACK promises the client its address, so
// it may leave only once the lease is on disk (a restarted server would hand
// the address to someone else). The server runs under strace while real
// clients (busybox udhcpc) get leases; each ACK's send must follow an
// fdatasync of a journal write holding that lease. A crash-and-restart test
// cannot see this: the kernel keeps what was written without a flush.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { Netns } from '../helpers/netns.ts';
import { startDhcp, tempDir, udhcpc, udhcpcScript, type ServerHandle } from '../helpers/dhcp-harness.ts';
import { FLUSHES, isFile, readTrace, SENDS, signalTraced, straceArgs, unflushedBefore, WRITES, type Syscall } from '../helpers/syscall-trace.ts';

const SERVER = '10.51.0.1';
const CLIENTS = 5;

interface Rig {
  ns: Netns;
  dir: string;
  script: string;
}

async function rig(t: ExecutionContext): Promise<Rig> {
  const ns = await Netns.create('zbj');
  const tmp = await tempDir('zb-dhcp-durability-');
  t.teardown(async () => {
    await ns.destroy();
    await tmp.remove();
  });
  await ns.bridge('br0', `${SERVER}/24`);
  return { ns, dir: tmp.dir, script: await udhcpcScript(tmp.dir) };
}

function config(stateDir: string, leasesFile: string): object {
  return {
    server: {
      address: SERVER,
      interfaces: ['br0'],
      dhcp: { mode: 'full', leasesFile, pool: { start: '10.51.0.100', end: '10.51.0.150', subnetMask: '255.255.255.0', router: SERVER } },
      http: { port: 8080 },
      stateDir,
    },
  };
}

/** A DHCPACK with an address, read straight from the bytes (RFC 2131 layout, not the server's codec). */
function ackIn(b: Buffer): { mac: string; ip: string } | undefined {
  if (b.length < 244 || b[0] !== 2 || b.readUInt32BE(236) !== 0x63825363) return undefined;
  let type = 0;
  for (let i = 240; i < b.length && b[i] !== 255; i += b[i] === 0 ? 1 : 2 + b[i + 1]) if (b[i] === 53) type = b[i + 2];
  const ip = [...b.subarray(16, 20)].join('.');
  if (type !== 5 || ip === '0.0.0.0') return undefined;
  return { mac: [...b.subarray(28, 34)].map((x) => x.toString(16).padStart(2, '0')).join(':'), ip };
}

async function stopTraced(server: ServerHandle): Promise<void> {
  const exited = new Promise((r) => (server.child.exitCode !== null ? r(undefined) : server.child.once('exit', r)));
  signalTraced(server.child.pid!, 'SIGTERM');
  await exited;
}

test('every ACK is sent only after an fdatasync of a journal write holding its lease', async (t) => {
  const { ns, dir, script } = await rig(t);
  const leasesFile = join(dir, 'leases.json');
  const journal = `${leasesFile}.journal`;
  const trace = join(dir, 'strace.out');
  const server = await startDhcp(ns, dir, config(dir, leasesFile), { wrap: straceArgs(trace, [...new Set([...FLUSHES, ...WRITES, ...SENDS])]) });
  t.teardown(() => signalTraced(server.child.pid!, 'SIGKILL'));

  const macs = Array.from({ length: CLIENTS }, (_, i) => `52:54:00:dd:00:${String(i + 1).padStart(2, '0')}`);
  const results = await Promise.all(macs.map(async (mac) => udhcpc(await ns.host('br0', { mac }), script, [], { tries: 5 })));
  results.forEach((r, i) => t.truthy(r.bound, `${macs[i]} got no lease:\n${r.output}`));
  await stopTraced(server);

  const calls = await readTrace(trace);
  const acks: { call: Syscall; mac: string; ip: string }[] = [];
  for (const c of calls) {
    if (!SENDS.includes(c.name) || isFile(c)) continue;
    for (const s of c.strings) {
      const a = ackIn(s);
      if (a) acks.push({ call: c, ...a });
    }
  }
  const problems: string[] = [];
  for (const a of acks) {
    const why = unflushedBefore(calls, a.call, [Buffer.from(`"mac":"${a.mac}"`), Buffer.from(`"ip":"${a.ip}"`)], (p) => p === journal);
    if (why) problems.push(`ACK of ${a.ip} to ${a.mac}: ${why}`);
  }
  const syncs = calls.filter((c) => FLUSHES.includes(c.name) && c.target === journal);
  t.log(`${acks.length} ACKs, ${syncs.length} journal flushes`);
  t.deepEqual(problems, [], 'ACKs not preceded by the flush of their lease');
  // not vacuous: every client's ACK was seen in the trace, with its address
  t.deepEqual([...new Set(acks.map((a) => a.mac))].sort(), macs, 'an ACK to every client is in the trace');
  for (const [i, r] of results.entries()) t.true(acks.some((a) => a.mac === macs[i] && a.ip === r.bound?.ip), `the ACK to ${macs[i]} carries ${r.bound?.ip}`);
  t.true(syncs.length >= 1);
});

test('ACK withheld while the journal cannot be written (full disk), with the reason on the timeline; served again once there is room', async (t) => {
  const { ns, dir, script } = await rig(t);
  // the lease files on a small tmpfs of the server's own mount namespace
  const stateDir = join(dir, 'state');
  await mkdir(stateDir);
  const leasesFile = join(stateDir, 'leases.json');
  const server = await startDhcp(ns, dir, config(stateDir, leasesFile), {
    wrap: ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs -o size=256k tmpfs "$1" && shift && exec "$@"', 'sh', stateDir],
  });
  t.teardown(() => void server.stop('SIGKILL'));
  // `ip netns exec`, unshare and sh each exec the next: the child is the server, and its root shows its mounts
  const mounted = `/proc/${server.child.pid}/root${stateDir}`;
  const filler = join(mounted, 'filler');
  await writeFile(filler, Buffer.alloc(1024 * 1024)).then(
    () => t.fail('the tmpfs did not fill up'),
    (e: NodeJS.ErrnoException) => t.is(e.code, 'ENOSPC'),
  );
  t.is(statfsSync(mounted).bavail, 0, 'no room left for the journal');

  const mac = '52:54:00:dd:01:01';
  const host = await ns.host('br0', { mac });
  const refused = await udhcpc(host, script, [], { tries: 2 });
  t.is(refused.bound, undefined, `no lease while the journal cannot be written:\n${refused.output}`);
  const withheld = server.eventsFor(mac).find((e) => e.kind === 'dhcp.ignored' && /ACK withheld/.test(e.reason ?? ''));
  t.regex(withheld?.reason ?? '', /lease not stored, ACK withheld: cannot write lease journal .*ENOSPC/);
  t.deepEqual(server.eventsFor(mac).filter((e) => e.kind === 'dhcp.ack'), [], 'no ACK on the timeline');
  t.true(server.eventsFor(mac).some((e) => e.kind === 'dhcp.offer'), 'the exchange got as far as the REQUEST');
  t.regex(server.output(), /ACK withheld/, 'the reason is in the log');

  await rm(filler);
  const served = await udhcpc(host, script, [], { tries: 5 });
  t.truthy(served.bound, `a lease once the journal can be written again:\n${served.output}`);
  t.true(server.eventsFor(mac).some((e) => e.kind === 'dhcp.ack'));
});
