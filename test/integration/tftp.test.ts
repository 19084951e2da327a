// The TFTP server in a private network namespace, fetched from by real
// clients in a second namespace across a bridge: atftp (blksize, tsize,
// windowsize), tftp-hpa, curl and busybox. Block-number rollover, 10% packet
// loss (nftables), a stranger and garbage mid-transfer, path escapes. Every download is
// checked by sha256.
import test from 'ava';
import { mkdtemp, rm, writeFile, open, readFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Netns, waitForOutput } from '../helpers/netns.ts';

const SERVER = '10.69.0.1';
const entry = fileURLToPath(new URL('../../harness/tftp-server-entry.ts', import.meta.url));

interface Ctx {
  ns: Netns;
  client: Netns;
  dir: string;
  out: string;
  server: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  sums: Map<string, string>;
}

let ctx: Ctx | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

async function writeRandom(file: string, bytes: number): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const chunk = randomBytes(Math.min(4 << 20, bytes - done));
      h.update(chunk);
      await fh.write(chunk);
      done += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

test.before(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-tftp-root-'));
  const out = await mkdtemp(path.join(tmpdir(), 'zb-tftp-out-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }), () => rm(out, { recursive: true, force: true }));
  const sums = new Map<string, string>();
  sums.set('small.bin', await writeRandom(path.join(dir, 'small.bin'), 3 * 1024 * 1024 + 123));
  // 120 MiB at 512-byte blocks is 245,760 blocks: the block number wraps three times.
  sums.set('big.bin', await writeRandom(path.join(dir, 'big.bin'), 120 * 1024 * 1024));
  sums.set('loss.bin', await writeRandom(path.join(dir, 'loss.bin'), LOSS_SIZE));
  sums.set('slow.bin', await writeRandom(path.join(dir, 'slow.bin'), 512 * 1024));
  // Served from an in-memory mount: 36 MiB = 73,728 blocks of 512, one wrap.
  const memSrc = path.join(out, 'roll.bin');
  sums.set('mem/roll.bin', await writeRandom(memSrc, 36 * 1024 * 1024));

  const ns = await Netns.create('zbtftp');
  cleanups.push(() => ns.destroy());
  await ns.bridge('br0', `${SERVER}/24`);
  const client = await ns.host('br0', { cidr: '10.69.0.2/24' });
  const server = ns.spawn(process.execPath, [
    '--disable-warning=ExperimentalWarning', entry,
    '--address', SERVER, '--port', '69', '--dir', dir, '--mem', `mem=${memSrc}`,
    '--timeout-ms', '100', '--retries', '20', '--max-transfers', '8', '--log-level', 'debug',
  ]);
  let stdout = '';
  let stderr = '';
  server.stdout!.on('data', (d) => (stdout += d));
  server.stderr!.on('data', (d) => (stderr += d));
  await waitForOutput(server, /tftp ready port=69/);
  ctx = { ns, client, dir, out, server, stdout: () => stdout, stderr: () => stderr, sums };
});

test.after.always(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

function c(): Ctx {
  if (!ctx) throw new Error('set-up failed');
  return ctx;
}

async function fetchWith(cmd: string, args: string[], timeout = 60_000) {
  const r = await c().client.exec(cmd, args, { timeout });
  return r;
}

async function expectFile(t: import('ava').ExecutionContext, local: string, name: string): Promise<void> {
  t.is(await sha256File(local), c().sums.get(name)!, `sha256 of ${name}`);
  await rm(local, { force: true });
}

test.serial('atftp with blksize 1468, windowsize 16 and tsize', async (t) => {
  const local = path.join(c().out, 'atftp-small');
  const r = await fetchWith('atftp', ['--option', 'blksize 1468', '--option', 'windowsize 16', '--option', 'tsize enable', '-g', '-r', 'small.bin', '-l', local, SERVER]);
  t.is(r.code, 0, r.stderr);
  await expectFile(t, local, 'small.bin');
  const req = c().stdout().split('\n').filter((l) => l.startsWith('event ')).map((l) => JSON.parse(l.slice(6)))
    .find((e) => e.kind === 'tftp.request' && e.detail.file === 'small.bin');
  t.like(req, { mac: 'ip:10.69.0.2', detail: { blksize: 1468, windowsize: 16 } });
});

test.serial('tftp-hpa in lock-step with 512-byte blocks', async (t) => {
  const local = path.join(c().out, 'hpa-small');
  const r = await fetchWith('tftp', [SERVER, '-m', 'binary', '-c', 'get', 'small.bin', local]);
  t.notRegex(r.stdout + r.stderr, /Error/);
  await expectFile(t, local, 'small.bin');
});

test.serial('curl with --tftp-blksize 1468', async (t) => {
  const local = path.join(c().out, 'curl-small');
  const r = await fetchWith('curl', ['-sS', '--tftp-blksize', '1468', `tftp://${SERVER}/small.bin`, '-o', local]);
  t.is(r.code, 0, r.stderr);
  await expectFile(t, local, 'small.bin');
});

test.serial('busybox tftp with -b 1468', async (t) => {
  const local = path.join(c().out, 'bb-small');
  const r = await fetchWith('busybox', ['tftp', '-g', '-r', 'small.bin', '-l', local, '-b', '1468', SERVER]);
  t.is(r.code, 0, r.stderr);
  await expectFile(t, local, 'small.bin');
});

test.serial('120 MiB at 512-byte blocks across three block-number wraps (atftp, windowsize 16)', async (t) => {
  const local = path.join(c().out, 'atftp-big');
  const t0 = Date.now();
  const r = await fetchWith('atftp', ['--option', 'blksize 512', '--option', 'windowsize 16', '-g', '-r', 'big.bin', '-l', local, SERVER], 120_000);
  t.is(r.code, 0, r.stderr);
  t.log(`120 MiB in ${Date.now() - t0} ms`);
  await expectFile(t, local, 'big.bin');
});

test.serial('36 MiB from the in-memory mount across a wrap, lock-step (tftp-hpa)', async (t) => {
  const local = path.join(c().out, 'hpa-roll');
  const r = await fetchWith('tftp', [SERVER, '-m', 'binary', '-c', 'get', 'mem/roll.bin', local], 120_000);
  t.notRegex(r.stdout + r.stderr, /Error/);
  await expectFile(t, local, 'mem/roll.bin');
});

// This kernel has no sch_netem, so the loss comes from nftables: each
// namespace drops 1 in 10 incoming UDP datagrams from the other side (on
// input, not output: a drop on output shows up as EPERM in the sender).
// Only DATA and ACK packets past the option exchange, and not the last
// block's, are dropped: atftp aborts with "unexpected OACK" when its ACK 0 is
// lost and the OACK comes again (a client bug no server can work around), and
// a lost final ACK leaves the server retrying to a client that has already
// exited, so it ends the transfer as failed, correctly but after the test.
// Either would fail the test one run in ten for a reason that is not ours.
// By path: npx puts node_modules/.bin first, and @vercel/nft installs an `nft` there.
const NFT = '/usr/sbin/nft';
const LOSS_SIZE = 256 * 1024 + 7;
const LOSS_LAST_BLOCK = Math.floor(LOSS_SIZE / 1468) + 1;
const lossRules = (from: string) => `
table inet zbloss {
  chain in { type filter hook input priority 0; ip saddr ${from} udp sport 1-65535 @th,64,16 3-4 @th,80,16 != 0 @th,80,16 != ${LOSS_LAST_BLOCK} numgen random mod 10 0 counter drop; }
}
`;

test.serial('10% packet loss both ways: transfers still complete intact', async (t) => {
  const { ns, client } = c();
  for (const [where, from] of [[client, SERVER], [ns, '10.69.0.2']] as const) {
    const added = await where.exec(NFT, ['-f', '-'], { input: lossRules(from) });
    t.is(added.code, 0, added.stderr);
  }
  try {
    const before = c().stderr().length;
    const a = path.join(c().out, 'loss-atftp');
    const r1 = await fetchWith('atftp', ['--option', 'blksize 1468', '--option', 'windowsize 8', '--tftp-timeout', '1', '-g', '-r', 'loss.bin', '-l', a, SERVER], 90_000);
    t.is(r1.code, 0, r1.stderr);
    await expectFile(t, a, 'loss.bin');
    // Not curl here: its own retransmission interval is derived from
    // --max-time (over a minute by default), so one lost packet that only
    // it can repair (a lost ACK of the OACK) stalls it far beyond this test.
    const b = path.join(c().out, 'loss-busybox');
    const r2 = await fetchWith('busybox', ['tftp', '-g', '-r', 'loss.bin', '-l', b, '-b', '1468', SERVER], 90_000);
    t.is(r2.code, 0, r2.stderr);
    await expectFile(t, b, 'loss.bin');
    const done = c().stderr().slice(before).split('\n').filter((l) => /tftp transfer done .*file=loss\.bin/.test(l));
    t.is(done.length, 2);
    t.true(done.every((l) => !/retransmissions=0\b/.test(l)), `the server had to retransmit: ${done.join(' | ')}`);
  } finally {
    await client.exec(NFT, ['delete', 'table', 'inet', 'zbloss']);
    await ns.exec(NFT, ['delete', 'table', 'inet', 'zbloss']);
  }
});

test.serial('a stranger mid-transfer gets ERROR 5; it and 1-byte packets change nothing', async (t) => {
  const { client, server } = { client: c().client, server: () => c().server };
  // Throttle the server's side of the link (512 KiB at 2 Mbit/s is about 2 s)
  // so the transfer is still running when the stranger speaks.
  const shaped = await c().ns.exec('tc', ['qdisc', 'add', 'dev', 'br0', 'root', 'tbf', 'rate', '2mbit', 'burst', '4kb', 'latency', '1s']);
  t.is(shaped.code, 0, shaped.stderr);
  try {
    const local = path.join(c().out, 'slow');
    const before = c().stderr().length;
    const download = fetchWith('atftp', ['-g', '-r', 'slow.bin', '-l', local, SERVER]);
    const tid: string = await waitForLine(() => c().stderr().slice(before), /tftp transfer started from=10\.69\.0\.2:\d+ file=slow\.bin tid=(\d+)/);
    const script = path.join(c().out, 'stranger.mjs');
    await writeFile(script, strangerScript);
    const probe = await client.exec(process.execPath, [script, SERVER, tid], { timeout: 10_000 });
    t.is(server().exitCode, null);
    const r = await download;
    t.is(r.code, 0, r.stderr);
    await expectFile(t, local, 'slow.bin');
    const seen = JSON.parse(probe.stdout || '{}') as { fromPort: number; reply: string };
    t.is(seen.fromPort, Number(tid), 'ERROR came from the transfer socket');
    t.is(seen.reply, '0005' + '0005' + Buffer.from('Unknown transfer ID\0').toString('hex'));
  } finally {
    await c().ns.exec('tc', ['qdisc', 'del', 'dev', 'br0', 'root']);
  }
});

test.serial('path escapes are refused; absolute paths stay inside the store', async (t) => {
  const hpa = await fetchWith('tftp', [SERVER, '-m', 'binary', '-c', 'get', '../../../../etc/passwd', path.join(c().out, 'esc1')]);
  t.regex(hpa.stdout + hpa.stderr, /Error code 2: access violation/);
  const abs = await fetchWith('tftp', [SERVER, '-m', 'binary', '-c', 'get', '/etc/passwd', path.join(c().out, 'esc2')]);
  t.regex(abs.stdout + abs.stderr, /Error code 1: file not found/);
  const bb = await fetchWith('busybox', ['tftp', '-g', '-r', '../etc/passwd', '-l', path.join(c().out, 'esc3'), SERVER]);
  t.not(bb.code, 0);
  t.regex(bb.stderr, /access violation/);
  const curl = await fetchWith('curl', ['-sS', '--path-as-is', `tftp://${SERVER}/../../etc/passwd`, '-o', path.join(c().out, 'esc4')]);
  t.is(curl.code, 69, 'curl: TFTP access violation');
  const passwd = await readFile('/etc/passwd');
  for (const f of ['esc1', 'esc2', 'esc3', 'esc4']) {
    const got = await readFile(path.join(c().out, f)).catch(() => Buffer.alloc(0));
    t.false(got.length > 0 && got.equals(passwd), `${f} must not hold /etc/passwd`);
  }
});

test.serial('the server is still serving after everything above', async (t) => {
  const local = path.join(c().out, 'final');
  const r = await fetchWith('curl', ['-sS', `tftp://${SERVER}/small.bin`, '-o', local]);
  t.is(r.code, 0, r.stderr);
  await expectFile(t, local, 'small.bin');
  t.is(c().server.exitCode, null);
});

async function waitForLine(text: () => string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = text().match(re);
    if (m) return m[1]!;
    if (Date.now() > end) throw new Error(`no line matching ${re}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Runs in the client namespace: an ACK from a port the transfer does not
// know, then 1-byte datagrams to the transfer and request ports. Prints the
// reply to the ACK.
const strangerScript = `
import dgram from 'node:dgram';
const [host, tid] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
s.on('message', (msg, rinfo) => {
  process.stdout.write(JSON.stringify({ fromPort: rinfo.port, reply: msg.toString('hex') }), () => process.exit(0));
});
s.bind(0, () => {
  s.send(Buffer.from([0, 4, 0, 5]), Number(tid), host);
  const g = dgram.createSocket('udp4');
  g.bind(0, () => {
    g.send(Buffer.from([7]), Number(tid), host);
    g.send(Buffer.from([7]), 69, host, () => g.close());
  });
});
setTimeout(() => { process.stdout.write(JSON.stringify({ fromPort: 0, reply: 'none' })); process.exit(0); }, 3000);
`;
