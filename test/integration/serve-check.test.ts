// `zeroboot serve --check`, `--log-format json` and the live status on a
// terminal, through the real CLI; the sample configuration and the systemd
// unit shipped in dist/ are checked as a farmer would use them.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtemp, mkdir, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import { runCommand, waitForOutput, killPid } from '../../lib/process.ts';
import { Netns } from '../helpers/netns.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/zeroboot');
const MAC = '52:54:00:aa:bb:07';
let dir: string;

const LOOPBACK = `server:
  address: 127.0.0.1
  dhcp: { mode: off }
  tftp: { enabled: false }
  http: { port: 0 }
  management: { port: 0 }
  stateDir: state
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/zos/vmlinuz, initrd: images/zos/initramfs.img }
groups:
  - { name: all, profile: zos, selector: {} }
machines:
  - { mac: '${MAC}', hostname: node-07 }
`;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-serve-check-'));
  await mkdir(path.join(dir, 'images/zos'), { recursive: true });
  await writeFile(path.join(dir, 'images/zos/vmlinuz'), 'kernel');
  await writeFile(path.join(dir, 'images/zos/initramfs.img'), 'initrd');
  await writeFile(path.join(dir, 'ok.yaml'), LOOPBACK);
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

const serve = (...args: string[]) => runCommand(BIN, ['serve', ...args], { timeout: 60_000 });
const lines = (s: string) => s.split('\n').filter((l) => l !== '');
async function config(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

test('--check: a valid configuration prints its summary and exits 0', async (t) => {
  const r = await serve('--config', path.join(dir, 'ok.yaml'), '--check');
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.is(r.stdout, `${path.join(dir, 'ok.yaml')}: valid: address 127.0.0.1, dhcp off, http :0, tftp off, api 127.0.0.1:0, 1 profile(s), 1 group(s), 1 machine(s) (0 reservation(s))\n`);
});

test('--check: an unknown key is one line naming the file and line, the key and the likely fix; exit 1', async (t) => {
  const file = await config('typo.yaml', LOOPBACK.replace('dhcp: { mode: off }', 'dhcp: { mode: off, pol: {} }'));
  const r = await serve('--config', file, '--check');
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.deepEqual(lines(r.stderr), [`zeroboot: ${file}:3: server.dhcp.pol: unknown key (did you mean "pool"?)`]);
});

test('an invalid configuration stops the start too, with the same line', async (t) => {
  const file = await config('typo-start.yaml', LOOPBACK.replace('  - { name: zos,', '  - { nmae: x, name: zos,'));
  const r = await serve('--config', file);
  t.is(r.code, 1);
  t.deepEqual(lines(r.stderr), [`zeroboot: ${file}:11: profiles[0].nmae: unknown key (did you mean "name"?)`]);
});

test('--check: every problem against the host and the files, one line each', async (t) => {
  const file = await config('host.yaml', LOOPBACK.replace('address: 127.0.0.1', 'address: 127.0.0.1\n  interfaces: [lo9]').replace('zos/vmlinuz', 'zos/bzImage'));
  const r = await serve('--config', file, '--check');
  t.is(r.code, 1);
  t.deepEqual(lines(r.stderr), [
    `zeroboot: ${file}:3: server.interfaces[0]: no interface "lo9" on this host (did you mean "lo"?)`,
    `zeroboot: ${file}:12: profiles[0].kernel: images/zos/bzImage is not in the store (mounts: images -> ${dir}/images); used by group all`,
  ]);
});

test('a host problem stops the start, with the same line as --check', async (t) => {
  const file = await config('host-start.yaml', LOOPBACK.replace('address: 127.0.0.1', 'address: 127.0.0.1\n  interfaces: [lo9]'));
  // Without the check this server would start (DHCP is off, nothing binds to lo9) and run until the timeout.
  const r = await runCommand(BIN, ['serve', '--config', file], { timeout: 90_000 });
  t.is(r.code, 1);
  t.deepEqual(lines(r.stderr), [`zeroboot: ${file}:3: server.interfaces[0]: no interface "lo9" on this host (did you mean "lo"?)`]);
});

test('a missing kernel is a warning when serving (it may be built later), not a refusal', async (t) => {
  const file = await config('nokernel.yaml', LOOPBACK.replace('zos/vmlinuz', 'zos/bzImage'));
  const child = spawn(BIN, ['serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => killPid(child.pid!));
  // Checked before anything listens, so the warning comes first.
  const listening = waitForOutput(child, /zeroboot serve: listening/, 60_000);
  t.regex(await waitForOutput(child, /warn +profiles\[0\]\.kernel: .*/, 60_000), /images\/zos\/bzImage is not in the store/);
  await listening;
});

test('--log-format: json and text only; --json is the same as json', async (t) => {
  const bad = await serve('--config', path.join(dir, 'ok.yaml'), '--check', '--log-format', 'yaml');
  t.is(bad.code, 2);
  t.deepEqual(lines(bad.stderr), ['zeroboot: serve: --log-format must be text or json, got "yaml"']);
  const contra = await serve('--config', path.join(dir, 'ok.yaml'), '--check', '--json', '--log-format', 'text');
  t.is(contra.code, 2);
  const ok = await serve('--config', path.join(dir, 'ok.yaml'), '--check', '--json');
  t.is(ok.code, 0);
  t.like(JSON.parse(ok.stdout), { check: 'ok', config: path.join(dir, 'ok.yaml') });
});

test('--log-format json: a refused configuration is JSON records too, one per line', async (t) => {
  const file = await config('json-bad.yaml', LOOPBACK.replace('address: 127.0.0.1', 'address: 127.0.0.1\n  interfaces: [lo9]').replace('zos/vmlinuz', 'zos/bzImage'));
  const r = await serve('--config', file, '--check', '--log-format', 'json');
  t.is(r.code, 1);
  const records = lines(r.stderr).map((l) => JSON.parse(l));
  t.is(records.length, 2);
  t.like(records[0], { level: 'error', msg: 'server.interfaces[0]: no interface "lo9" on this host (did you mean "lo"?)', config: `${file}:3` });
  const typo = await serve('--config', await config('json-typo.yaml', LOOPBACK.replace('http: {', 'htp: {')), '--log-format', 'json');
  t.is(typo.code, 1);
  t.like(JSON.parse(typo.stderr), { level: 'error', error: 'ConfigError' });
  t.regex(JSON.parse(typo.stderr).msg, /server\.htp: unknown key \(did you mean "http"\?\)/);
});

/** Stops a spawned server by its pid and waits for it to exit. */
async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  killPid(child.pid!, signal);
  await exited;
}

/**
 * The server on a pseudo-terminal (script(1)) as stdout and stderr. The shell
 * prints its pid before exec'ing the server, so the server is stopped by pid
 * even when script itself is gone.
 */
async function onTerminal(t: ExecutionContext, args: string[]): Promise<{ child: ChildProcess; screen: () => string }> {
  const child = spawn('script', ['-qfec', `echo "server pid $$"; exec ${BIN} serve ${args.join(' ')}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout!.on('data', (d) => (screen += d));
  const pid = Number((await waitForOutput(child, /server pid \d+/, 60_000)).split(' ')[2]);
  t.teardown(async () => {
    killPid(pid, 'SIGKILL');
    await stop(child, 'SIGKILL');
  });
  return { child, screen: () => screen };
}

test('--log-format json: every line a running server writes is one JSON object', async (t) => {
  const file = await config('json-run.yaml', LOOPBACK.replace('zos/vmlinuz', 'zos/bzImage'));
  // Node's own warnings too: this one is emitted on SIGUSR2, once the server runs (NODE_OPTIONS splits at spaces: none in it).
  const probe = `--import=data:text/javascript,process.on('SIGUSR2',()=>process.emitWarning('probe-warning','DeprecationWarning'))`;
  const child = spawn(BIN, ['serve', '--config', file, '--log-format', 'json', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: probe } });
  t.teardown(() => stop(child, 'SIGKILL'));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const listening = JSON.parse(await waitForOutput(child, /\{"listening".*\}/, 60_000));
  // A request from a node with a newline and a quote in what it sends: still one object per line.
  const url = `${listening.listening.http}/ipxe?mac=${MAC}&hostname=${encodeURIComponent('evil\n"x')}`;
  t.is((await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', url])).stdout, '200');
  await runCommand('curl', ['-s', '-o', '/dev/null', `${listening.listening.http}/images/zos/bzImage`]);
  const warned = waitForOutput(child, /"msg":"probe-warning"[^\n]*/, 60_000);
  killPid(child.pid!, 'SIGUSR2');
  await warned;
  await stop(child);
  const all = [...lines(out), ...lines(err)];
  t.true(all.length >= 4, all.join('\n'));
  for (const l of all) {
    let o: unknown;
    t.notThrows(() => (o = JSON.parse(l)), l);
    t.true(typeof o === 'object' && o !== null && !Array.isArray(o), l);
  }
  const records = lines(err).map((l) => JSON.parse(l));
  t.true(records.every((r) => typeof r.time === 'string' && typeof r.level === 'string' && typeof r.msg === 'string'));
  t.true(records.some((r) => r.level === 'warn' && /profiles\[0\]\.kernel/.test(r.msg)));
  t.true(records.some((r) => r.msg === 'stopping'));
  t.true(records.some((r) => r.level === 'warn' && r.msg === 'probe-warning' && r.warning === 'DeprecationWarning'));
});

test('on a terminal: one live status line per machine (MAC, hostname, IP, age, stage), logs above it', async (t) => {
  // script(1) gives the server a pseudo-terminal as stdout and stderr.
  const { child, screen } = await onTerminal(t, ['--log-level', 'debug', '--config', path.join(dir, 'ok.yaml')]);
  const http = (await waitForOutput(child, /http +http:\/\/127\.0\.0\.1:\d+/, 60_000)).split(/\s+/)[1];
  await waitForOutput(child, /MAC +HOSTNAME +IP +AGE +STAGE/, 60_000);
  t.is((await runCommand('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${http}/ipxe?mac=${MAC}`])).stdout, '200');
  // No lease names it: the address is the one its HTTP request came from.
  await waitForOutput(child, new RegExp(`${MAC} +node-07 +127\\.0\\.0\\.1 +\\d+s +http\\.script`), 60_000);
  t.regex(screen(), /STAGE +\(1 machine\)/);
  // A log line while the block is up (a malformed request, logged at debug): the block is
  // erased (cursor up over it, CSI n F, then clear, CSI J), the line written, the block drawn again.
  const logged = waitForOutput(child, /\x1b\[2F\x1b\[Jdebug +bad http request[^\n]*\n+MAC +HOSTNAME/, 60_000);
  const socket = connect(Number(new URL(http).port), '127.0.0.1', () => socket.end('NOT HTTP\r\n\r\n'));
  socket.on('error', () => undefined);
  await logged;
  socket.destroy();
  await stop(child);
});

test('on a terminal with --no-status, and off a terminal: plain lines, no status block', async (t) => {
  const r = spawn(BIN, ['serve', '--config', path.join(dir, 'ok.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => stop(r, 'SIGKILL'));
  let out = '';
  r.stdout!.on('data', (d) => (out += d));
  await waitForOutput(r, /dhcp +off/, 60_000);
  await stop(r);
  t.notRegex(out, /HOSTNAME|\x1b\[/);
  const { child, screen } = await onTerminal(t, ['--no-status', '--config', path.join(dir, 'ok.yaml')]);
  await waitForOutput(child, /dhcp +off/, 60_000);
  await stop(child);
  t.notRegex(screen(), /HOSTNAME|\x1b\[\d+F/);
});

test('the sample /etc/zeroboot/zeroboot.yaml passes --check, in proxy mode and with its full-mode lines uncommented', async (t) => {
  const sample = await readFile(path.join(ROOT, 'dist/zeroboot.yaml'), 'utf8');
  const images = path.join(dir, 'srv-images');
  await mkdir(path.join(images, 'zos'), { recursive: true });
  await writeFile(path.join(images, 'zos/vmlinuz'), 'kernel');
  await writeFile(path.join(images, 'zos/initramfs.img'), 'initrd');
  // Only the images' folder moves; the interface is the sample's own eth0, in a namespace.
  const proxy = sample.replaceAll('/srv/zeroboot/images', images);
  const full = proxy
    .replace(/^ {4}mode: proxy\n/m, '')
    .replace(/^ {4}# (mode: full|pool: .*)$/gm, '    $1')
    .replace(/^# (machines:|  - \{ mac)/gm, '$1');
  t.regex(full, /^ {4}pool: \{/m);
  t.regex(full, /^machines:\n {2}- \{ mac/m);
  const ns = await Netns.create('zbsample');
  t.teardown(() => ns.destroy());
  await ns.bridge('eth0', '10.77.0.1/24');
  for (const [name, text] of [['sample-proxy.yaml', proxy], ['sample-full.yaml', full]]) {
    const r = await ns.exec(BIN, ['serve', '--config', await config(name, text), '--check'], { timeout: 60_000 });
    t.is(r.code, 0, `${name}: ${r.stderr}`);
    t.regex(r.stdout, /: valid: address 10\.77\.0\.1 on eth0/);
  }
});

test('the systemd unit: verified by systemd-analyze, restarts on failure, not root, a state directory', async (t) => {
  const unit = await readFile(path.join(ROOT, 'dist/zeroboot.service'), 'utf8');
  for (const line of ['Restart=on-failure', 'StateDirectory=zeroboot', 'DynamicUser=yes', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'NoNewPrivileges=yes']) {
    t.true(unit.split('\n').includes(line), line);
  }
  t.notRegex(unit, /^User=root/m);
  const which = await runCommand('sh', ['-c', 'command -v systemd-analyze']);
  if (which.code !== 0) return t.log('systemd-analyze not installed: the unit was not verified');
  // The unit names /opt/zeroboot; verify checks its commands exist, so point it at this checkout.
  const file = path.join(dir, 'zeroboot.service');
  await writeFile(file, unit.replaceAll('/opt/zeroboot/', `${ROOT}/`));
  const r = await runCommand('systemd-analyze', ['verify', file], { timeout: 60_000 });
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
});
