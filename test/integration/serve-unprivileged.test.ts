// The systemd unit runs the server as an unprivileged user with only the
// capabilities it lists (AmbientCapabilities). Here the same: a user that is
// not root, with exactly those capabilities (setpriv), serves full DHCP on
// port 67 and TFTP on port 69 in a namespace, and a client gets an address
// and a boot loader. Without them, the start stops with one line naming the
// capability to grant.
import test from 'ava';
import { mkdtemp, mkdir, writeFile, readFile, readdir, rm, chmod, chown, copyFile } from 'node:fs/promises';
import { runCommand } from '../../lib/process.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns, waitForOutput } from '../helpers/netns.ts';
import { threadNices } from '../helpers/thread-nice.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOBODY = 65534;
/** bin/zeroboot of a checkout user nobody can read (this one, or a copy of it). */
let BIN = path.join(ROOT, 'bin/zeroboot');
const MAC = '52:54:00:bb:00:01';

let dir: string;
let ns: Netns;
let client: Netns;
let caps: string[];
/** The unit's LimitNICE as the raw RLIMIT_NICE (20 - nice). */
let niceLimit: number | undefined;

test.before(async () => {
  const unit = await readFile(path.join(ROOT, 'dist/zeroboot.service'), 'utf8');
  const nice = unit.match(/^LimitNICE=(-?\d+)$/m)?.[1];
  niceLimit = nice === undefined ? undefined : 20 - Number(nice);
  caps = (unit.match(/^AmbientCapabilities=(.*)$/m)?.[1] ?? '').split(/\s+/).filter(Boolean).map((c) => c.replace(/^CAP_/, '').toLowerCase());
  dir = await mkdtemp(path.join(tmpdir(), 'zb-unpriv-'));
  await mkdir(path.join(dir, 'ipxe'));
  await mkdir(path.join(dir, 'state'));
  await mkdir(path.join(dir, 'cache'));
  await copyFile('/usr/lib/ipxe/undionly.kpxe', path.join(dir, 'ipxe/undionly.kpxe'));
  await writeFile(
    path.join(dir, 'zeroboot.yaml'),
    `server:
  interfaces: [br0]
  stateDir: state
  ipxeDir: ipxe
  dhcp: { mode: full, pool: { start: 10.79.0.100, end: 10.79.0.110, router: 10.79.0.1 } }
  http: { port: 8080 }
profiles:
  - { name: zos, kernel: images/vmlinuz }
groups:
  - { name: all, profile: zos, selector: {} }
`,
  );
  // The service user owns its state and cache (StateDirectory, CacheDirectory); the rest it only reads.
  await chmod(dir, 0o755);
  for (const d of ['state', 'cache']) await chown(path.join(dir, d), NOBODY, NOBODY);
  // A checkout in a private folder (mktemp's 0700, as CI clones are) is out of nobody's reach: then the
  // server runs from a copy in this world-readable folder (hard links where the filesystem allows).
  const reach = await runCommand('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'test', '-r', path.join(ROOT, 'cli/zeroboot.ts')]);
  if (reach.code !== 0) {
    const copy = path.join(dir, 'code');
    await mkdir(copy);
    for (const entry of await readdir(ROOT)) {
      if (entry === '.git') continue;
      const linked = await runCommand('cp', ['-al', path.join(ROOT, entry), copy]);
      if (linked.code !== 0) await runCommand('cp', ['-a', path.join(ROOT, entry), copy]);
    }
    BIN = path.join(copy, 'bin/zeroboot');
  }
  ns = await Netns.create('zbunpriv');
  await ns.bridge('br0', '10.79.0.1/24');
  client = await ns.host('br0', { mac: MAC });
});

test.after.always(async () => {
  await ns?.destroy();
  await rm(dir, { recursive: true, force: true });
});

/** The server as user nobody with `keep` as its only capabilities; `niceLimit`: the unit's LimitNICE, as the raw RLIMIT_NICE. */
function unprivileged(keep: string[], extra: string[] = [], niceLimit?: number) {
  const set = keep.map((c) => `+${c}`).join(',');
  const capArgs = keep.length > 0 ? [`--inh-caps=-all,${set}`, `--ambient-caps=-all,${set}`, `--bounding-set=-all,${set}`] : ['--inh-caps=-all', '--bounding-set=-all'];
  const argv = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...capArgs, BIN, 'serve', '--config', path.join(dir, 'zeroboot.yaml'), ...extra];
  const cmd = niceLimit === undefined ? argv : ['prlimit', `--nice=${niceLimit}`, ...argv];
  return ns.spawn(cmd[0], cmd.slice(1), {
    env: { ...process.env, NODE_COMPILE_CACHE: path.join(dir, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

test.serial('without the unit\'s LimitNICE: the server serves at its own priority and says once how to let DHCP go first', async (t) => {
  const server = unprivileged(caps);
  let out = '';
  server.stdout!.on('data', (d) => (out += d));
  server.stderr!.on('data', (d) => (out += d));
  t.teardown(async () => {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  });
  await waitForOutput(server, /dhcp +full on br0/, 60_000);
  const lease = await client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '5', '-T', '3', '-s', '/bin/true'], { timeout: 60_000 });
  t.is(lease.code, 0, lease.stderr);
  t.deepEqual([...new Set(await threadNices(server.pid!))], [0]);
  t.is(out.match(/dhcp thread runs at the process priority: allow nice -10 \(LimitNICE=-10 or CAP_SYS_NICE\)/g)?.length, 1, out);
});

test.serial('without capabilities: one line naming the capability to grant', async (t) => {
  // Without TFTP (its refusal names no capability), DHCP's bind on 67 is the first to fail.
  const server = unprivileged([], ['--no-tftp']);
  let err = '';
  server.stderr!.on('data', (d) => (err += d));
  const code = await new Promise((resolve) => server.on('exit', resolve));
  t.is(code, 1);
  t.regex(err, /^zeroboot: .*no permission to bind UDP port 67; run as root or grant CAP_NET_BIND_SERVICE\n$/m);
});

test.serial("with the unit's capabilities only, as nobody: DHCP on 67 and TFTP on 69 serve a client", async (t) => {
  t.true(caps.includes('net_bind_service'), `unit capabilities: ${caps.join(' ')}`);
  t.is(niceLimit, 30, 'the unit allows nice -10 (LimitNICE=-10)');
  // Raising RLIMIT_NICE takes CAP_SYS_RESOURCE, which root lacks in some sandboxes: there, CAP_SYS_NICE
  // stands in for the unit's LimitNICE (both let the DHCP thread take -10, and nothing else here differs).
  const canLimit = (await runCommand('prlimit', [`--nice=${niceLimit}`, 'true'])).code === 0;
  if (!canLimit) t.log('this machine cannot set RLIMIT_NICE (no CAP_SYS_RESOURCE): CAP_SYS_NICE stands in for LimitNICE');
  const server = canLimit ? unprivileged(caps, [], niceLimit) : unprivileged([...caps, 'sys_nice']);
  await waitForOutput(server, /dhcp +full on br0/, 60_000);
  const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
  t.regex(status, new RegExp(`^Uid:\\s+${NOBODY}\\s`, 'm'));
  const lease = await client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '5', '-T', '3', '-s', '/bin/true'], { timeout: 60_000 });
  t.is(lease.code, 0, lease.stderr);
  t.regex(lease.stdout + lease.stderr, /lease of 10\.79\.0\.1\d\d obtained/);
  await client.ip('addr', 'add', '10.79.0.50/24', 'dev', 'eth0');
  const out = path.join(dir, 'undionly.got');
  const tftp = await client.exec('atftp', ['-g', '-r', 'undionly.kpxe', '-l', out, '10.79.0.1', '69'], { timeout: 60_000 });
  t.is(tftp.code, 0, tftp.stderr);
  t.deepEqual(await readFile(out), await readFile('/usr/lib/ipxe/undionly.kpxe'));
  t.true((await threadNices(server.pid!)).includes(-10), 'the DHCP thread took nice -10 under the unit\'s limit');
});
