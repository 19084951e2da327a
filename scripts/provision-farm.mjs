#!/usr/bin/env node
// Provisions a farm on this host (issue 13): checks the host, builds the
// node image, writes the server configuration with the farm's
// reservations, installs and starts the systemd unit (or runs the server
// in the foreground), and waits until every listed node has sent its
// signed report, showing a live table. Every step compares what is there
// with what is wanted first, so a second run changes nothing and says so.
// Exit codes: scripts/provision/exit-codes.ts (listed in docs/farmer.md).
import { $, fs, minimist, path } from 'zx';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EXIT, ProvisionError } from './provision/exit-codes.ts';
import { parseFarmCsv } from './provision/farm-csv.ts';
import { checkInterface, checkPorts } from './provision/host-checks.ts';
import { probeDhcp, probeMac, proxyAdvice } from './provision/dhcp-probe.ts';
import { checkRows, farmKernelArgs, renderFarmConfig, RUNMODES } from './provision/farm-config.ts';
import { farmMedia, mediaBuilders, mediaCurrent, mediaStamp } from './provision/farm-media.ts';
import { buildCmdline } from '../lib/cmdline.ts';
import { serviceUnit, UNIT_NAME } from './provision/systemd-unit.ts';
import { nodeRows, renderTable } from './provision/node-table.ts';
import { buildCurrentImage, isImageCurrent } from '../harness/qemu-image.ts';
import { parseImageYaml } from '../image/spec.ts';
import { SERVE_NODE_FLAGS } from '../boot/runtime-flags.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: scripts/provision-farm.mjs --farm-id N --interface IF --runmode MODE [options]

Provisions a farm on this host: checks the host, builds the node image,
writes the server configuration (with the CSV's reservations), installs and
starts the systemd unit (or runs the server in the foreground), and waits
until every listed node has sent its signed report, showing a live table.
A second run with the same inputs changes nothing and says so.

Required:
  --farm-id N          the farm id (kernel argument farmer_id)
  --interface IF       the interface on the farm network (must have an IPv4 address)
  --runmode MODE       ${RUNMODES.join(' | ')}

Options:
  --csv FILE           servers: mac,hostname[,ip][,profile] per line
  --foreground         run zeroboot serve in this terminal instead of the systemd unit
  --dry-run            print every change and make none
  --json               one JSON document on stdout (progress on stderr)
  --dhcp MODE          auto | full | proxy (default auto: proxy when another DHCP server answers the probe)
  --pool START-END     full mode's address pool (default: the upper half of the subnet)
  --config FILE        configuration to write (default /etc/zeroboot/zeroboot.yaml)
  --state-dir DIR      server state: leases, node registry (default /var/lib/zeroboot)
  --image FILE         image description (default images/node.yaml)
  --image-dir DIR      where the image is built (default <state-dir>/image)
  --http-port N        node-facing HTTP port (default 8080)
  --api-port N         management API port on 127.0.0.1 (default 8081)
  --unit-dir DIR       where the systemd unit goes (default /etc/systemd/system)
  --media-dir DIR      where the ISO and USB images go (default <state-dir>/media)
  --no-media           do not write boot media
  --kernel-arg K[=V]   extra kernel argument (repeatable)
  --probe-ms N         how long the DHCP probe listens (default 3000)
  --wait-timeout S     how long to wait for the reports, in seconds (default 1800)
  --no-wait            do not wait for the reports
  -h, --help           show this help

Exit codes: ${Object.entries(EXIT).map(([k, v]) => `${v} ${k}`).join(', ')}
`;

const STRINGS = ['farm-id', 'interface', 'runmode', 'csv', 'dhcp', 'pool', 'config', 'state-dir', 'image', 'image-dir', 'http-port', 'api-port', 'unit-dir', 'media-dir', 'kernel-arg', 'probe-ms', 'wait-timeout'];
const BOOLEANS = ['foreground', 'dry-run', 'json', 'wait', 'media', 'help'];

function usage(msg) {
  return new ProvisionError('usage', `${msg} (see --help)`);
}

function intArg(v, name, min, max, fallback) {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(String(v)) || n < min || n > max) throw usage(`--${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

function parseArgs(argv) {
  const a = minimist(argv, { string: STRINGS, boolean: BOOLEANS, alias: { h: 'help' }, default: { wait: true, media: true } });
  const unknown = Object.keys(a).filter((k) => k !== '_' && k !== 'h' && !STRINGS.includes(k) && !BOOLEANS.includes(k));
  if (unknown.length > 0) throw usage(`unknown option --${unknown[0]}`);
  if (a._.length > 0) throw usage(`unexpected argument "${a._[0]}"`);
  if (a.help) return { help: true };
  for (const k of ['farm-id', 'interface', 'runmode']) if (!a[k]) throw usage(`--${k} is required`);
  for (const k of STRINGS) if (k !== 'kernel-arg' && Array.isArray(a[k])) throw usage(`--${k} is given twice`);
  if (!RUNMODES.includes(a.runmode)) throw usage(`--runmode must be ${RUNMODES.join(', ')}, got "${a.runmode}"`);
  const dhcp = a.dhcp ?? 'auto';
  if (!['auto', 'full', 'proxy'].includes(dhcp)) throw usage(`--dhcp must be auto, full or proxy, got "${dhcp}"`);
  let pool;
  if (a.pool) {
    const m = /^(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+)$/.exec(a.pool);
    if (!m) throw usage(`--pool must be START-END addresses, got "${a.pool}"`);
    pool = { start: m[1], end: m[2] };
  }
  const kernelArgs = {};
  for (const kv of [a['kernel-arg'] ?? []].flat()) {
    const [k, ...rest] = kv.split('=');
    if (!/^[A-Za-z0-9_.:-]+$/.test(k)) throw usage(`--kernel-arg "${kv}" is not NAME or NAME=VALUE`);
    kernelArgs[k] = rest.length > 0 ? rest.join('=') : null;
  }
  const stateDir = path.resolve(a['state-dir'] ?? '/var/lib/zeroboot');
  return {
    farmId: intArg(a['farm-id'], 'farm-id', 0, 2 ** 32 - 1),
    interface: a.interface,
    runmode: a.runmode,
    csv: a.csv,
    foreground: a.foreground,
    dryRun: a['dry-run'],
    json: a.json,
    dhcp,
    pool,
    config: path.resolve(a.config ?? '/etc/zeroboot/zeroboot.yaml'),
    stateDir,
    image: path.resolve(a.image ?? path.join(ROOT, 'images/node.yaml')),
    imageDir: path.resolve(a['image-dir'] ?? path.join(stateDir, 'image')),
    httpPort: intArg(a['http-port'], 'http-port', 1, 65535, 8080),
    apiPort: intArg(a['api-port'], 'api-port', 1, 65535, 8081),
    unitDir: path.resolve(a['unit-dir'] ?? '/etc/systemd/system'),
    mediaDir: path.resolve(a['media-dir'] ?? path.join(stateDir, 'media')),
    media: a.media,
    kernelArgs,
    probeMs: intArg(a['probe-ms'], 'probe-ms', 100, 60_000, 3000),
    waitSeconds: intArg(a['wait-timeout'], 'wait-timeout', 1, 7 * 86400, 1800),
    wait: a.wait,
  };
}

/** Progress for people: stdout, or stderr under --json (stdout is the one JSON document then). */
function reporter(json) {
  const out = json ? process.stderr : process.stdout;
  return { say: (line) => out.write(`${line}\n`), stream: out, tty: !json && process.stdout.isTTY };
}

async function readOr(file, fallback) {
  return fs.readFile(file, 'utf8').catch(() => fallback);
}

/** A unified diff of `before` -> `after` for --dry-run (diff -u on two temp files). */
async function diffText(before, after, label) {
  const dir = await fs.mkdtemp(path.join(process.env.TMPDIR ?? '/tmp', 'zb-provision-'));
  try {
    await fs.writeFile(path.join(dir, 'old'), before);
    await fs.writeFile(path.join(dir, 'new'), after);
    const r = await $({ nothrow: true, quiet: true })`diff -u --label ${label} --label ${label} ${path.join(dir, 'old')} ${path.join(dir, 'new')}`;
    return r.stdout;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Writes `text` to `file` unless it holds it already; a change is recorded (and, dry, only shown). */
async function ensureFile(ctx, file, text, what) {
  const before = await readOr(file, undefined);
  if (before === text) {
    ctx.say(`${what}: unchanged (${file})`);
    return false;
  }
  ctx.changes.push({ step: what, action: before === undefined ? 'create' : 'update', file });
  if (ctx.dryRun) {
    ctx.say(`${what}: would ${before === undefined ? 'create' : 'update'} ${file}`);
    ctx.say((await diffText(before ?? '', text, file)).trimEnd());
    return true;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  if (before !== undefined) await fs.writeFile(`${file}.bak`, before);
  await fs.writeFile(`${file}.tmp`, text);
  await fs.rename(`${file}.tmp`, file);
  ctx.say(`${what}: ${before === undefined ? 'created' : 'updated'} ${file}${before !== undefined ? ` (previous one in ${file}.bak)` : ''}`);
  return true;
}

async function checks(ctx, o) {
  const nodes = o.csv ? parseFarmCsv(await fs.readFile(o.csv, 'utf8').catch((e) => {
    throw new ProvisionError('badCsv', `cannot read ${o.csv}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }), o.csv) : [];
  const iface = checkInterface(o.interface);
  ctx.say(`check: interface ${iface.name} has ${iface.address}/${iface.prefixLength}`);
  if (!iface.carrier) ctx.say(`warning: ${iface.name} has no link (cable unplugged, or a bridge with no port up): no server will boot until it has one`);
  const spec = parseImageYaml(await fs.readFile(o.image, 'utf8'), o.image);
  const signedChain = spec.secureBoot !== undefined;
  checkRows({ nodes, iface, signedChain });
  if (o.csv) ctx.say(`check: ${o.csv} lists ${nodes.length} server(s)`);
  const held = await checkPorts(iface, o.httpPort);
  const own = held.find((u) => u.zeroboot);
  ctx.say(own ? `check: ports 67, 69 and ${o.httpPort} are held by zeroboot serve (pid ${own.pid}), this farm's server` : `check: ports 67, 69 and ${o.httpPort} are free`);
  let mode = o.dhcp;
  let offers = [];
  let advice = [];
  if (o.dhcp !== 'proxy') {
    offers = await probeDhcp(iface, o.probeMs);
    if (offers.length > 0 && o.dhcp === 'full') {
      throw new ProvisionError('dhcpConflict', `--dhcp full, but another DHCP server answers on ${iface.name}: ${offers.map((x) => x.server).join(', ')}; two address servers on one segment hand out conflicting leases (use --dhcp proxy or auto)`);
    }
    mode = offers.length > 0 ? 'proxy' : 'full';
    ctx.say(offers.length > 0 ? `check: DHCP probe on ${iface.name}: another DHCP server answers (${offers.map((x) => x.server).join(', ')})` : `check: DHCP probe on ${iface.name}: no other DHCP server answered within ${o.probeMs} ms`);
  }
  if (mode === 'proxy') {
    advice = proxyAdvice(offers, iface.address, nodes.filter((n) => n.ip).map((n) => ({ mac: n.mac, ip: n.ip })));
    for (const line of advice) ctx.say(line);
  } else {
    ctx.say('zeroboot answers in full mode: it hands out the addresses on this segment');
  }
  return { nodes, iface, mode, offers, advice, signedChain, ownServer: own };
}

async function imageStep(ctx, o) {
  if (await isImageCurrent(o.image, o.imageDir)) {
    ctx.say(`image: up to date (${o.imageDir})`);
    return false;
  }
  ctx.changes.push({ step: 'image', action: 'build', file: o.imageDir });
  if (ctx.dryRun) {
    ctx.say(`image: would build ${o.image} into ${o.imageDir}`);
    return true;
  }
  ctx.say(`image: building ${path.relative(ROOT, o.image) || o.image} into ${o.imageDir} (minutes on the first run)`);
  try {
    await buildCurrentImage(o.image, o.imageDir);
  } catch (e) {
    throw new ProvisionError('imageBuild', `the image build failed: ${e.message.split('\n')[0]}`);
  }
  ctx.say('image: built');
  return true;
}

/** The ISO and USB image with the farm's command line, for servers that cannot boot from the network. */
async function mediaStep(ctx, o, iface) {
  if (!o.media) return;
  const builders = await mediaBuilders(ROOT);
  if (!builders) {
    ctx.say('media: this checkout has no media builders (image/media); servers boot from the network only');
    return;
  }
  const cmdline = buildCmdline(farmKernelArgs({ farmId: o.farmId, runmode: o.runmode, iface, httpPort: o.httpPort, kernelArgs: o.kernelArgs }));
  const m = farmMedia(o.mediaDir, o.farmId);
  const want = await mediaStamp(o.imageDir, cmdline);
  if (await mediaCurrent(m, want)) {
    ctx.say(`media: up to date (${m.iso}, ${m.usb})`);
    return;
  }
  ctx.changes.push({ step: 'media', action: 'write', file: `${m.iso} ${m.usb}` });
  if (ctx.dryRun) {
    ctx.say(`media: would write ${m.iso} and ${m.usb} (command line: ${cmdline})`);
    return;
  }
  await fs.mkdir(o.mediaDir, { recursive: true });
  const input = { kernel: path.join(o.imageDir, 'vmlinuz'), initrd: path.join(o.imageDir, 'initramfs.img'), cmdline };
  try {
    await builders.buildIso(input, m.iso);
    await builders.buildUsb(input, m.usb);
  } catch (e) {
    throw new ProvisionError('imageBuild', `writing the boot media failed: ${e.message.split('\n')[0]}`);
  }
  await fs.writeFile(m.stamp, want);
  ctx.say(`media: wrote ${m.iso} (CD or virtual media; BIOS and UEFI) and ${m.usb} (USB stick: dd if=${m.usb} of=/dev/sdX bs=4M)`);
}

async function systemctl(...args) {
  return $({ nothrow: true, quiet: true })`systemctl ${args}`;
}

/** Installs the unit; enables, starts or restarts the service as needed. */
async function serviceStep(ctx, o, changed) {
  const unitFile = path.join(o.unitDir, UNIT_NAME);
  const unitChanged = await ensureFile(ctx, unitFile, serviceUnit({ root: ROOT, config: o.config, farmId: o.farmId }), 'systemd unit');
  const enabled = (await systemctl('is-enabled', UNIT_NAME)).stdout.trim() === 'enabled';
  const active = (await systemctl('is-active', UNIT_NAME)).stdout.trim() === 'active';
  const steps = [];
  if (unitChanged) steps.push(['daemon-reload']);
  if (!enabled) steps.push(['enable', UNIT_NAME]);
  if (!active) steps.push(['start', UNIT_NAME]);
  else if (changed || unitChanged) steps.push(['restart', UNIT_NAME]);
  if (steps.length === 0) ctx.say(`service: ${UNIT_NAME} enabled and running`);
  for (const s of steps) {
    ctx.changes.push({ step: 'service', action: `systemctl ${s.join(' ')}` });
    if (ctx.dryRun) {
      ctx.say(`service: would run systemctl ${s.join(' ')}`);
      continue;
    }
    const r = await systemctl(...s);
    if (r.exitCode !== 0) throw new ProvisionError('service', `systemctl ${s.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n')[0]} (no systemd on this host? use --foreground)`);
    ctx.say(`service: systemctl ${s.join(' ')}`);
  }
}

/** Starts `zeroboot serve` as a child of this script; resolves once it listens. Its log goes to <state-dir>/serve.log. */
async function startForeground(ctx, o) {
  await fs.mkdir(o.stateDir, { recursive: true });
  const log = fs.createWriteStream(path.join(o.stateDir, 'serve.log'), { flags: 'a' });
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...SERVE_NODE_FLAGS, path.join(ROOT, 'cli/zeroboot.ts'), 'serve', '--config', o.config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ProvisionError('serverExited', `zeroboot serve did not start within 60 s; see ${path.join(o.stateDir, 'serve.log')}`)), 60_000);
    const onData = (d) => {
      log.write(d);
      seen += d.toString();
      if (seen.includes('zeroboot serve: listening')) (clearTimeout(timer), resolve());
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => (clearTimeout(timer), reject(new ProvisionError('serverExited', `zeroboot serve exited (${code}): ${seen.trim().split('\n').slice(-2).join(' ')}`))));
  });
  await listening;
  ctx.say(`server: zeroboot serve runs in the foreground (pid ${child.pid}, log ${path.join(o.stateDir, 'serve.log')})`);
  return child;
}

async function api(o, p) {
  const token = await readOr(path.join(o.stateDir, 'api-token'), '');
  const res = await fetch(`http://127.0.0.1:${o.apiPort}/api${p}`, { headers: token ? { authorization: `Bearer ${token.trim()}` } : {}, signal: AbortSignal.timeout(10_000) });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET /api${p}: ${res.status}`);
  return res.json();
}

async function currentRows(o, listed, iface) {
  const machines = [];
  let cursor = null;
  do {
    const page = await api(o, `/machines?view=full&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    machines.push(...(page?.machines ?? []));
    cursor = page?.next ?? null;
  } while (cursor);
  const nodes = [];
  cursor = null;
  do {
    const page = await api(o, `/nodes?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    nodes.push(...(page?.nodes ?? []));
    cursor = page?.next ?? null;
  } while (cursor);
  const details = new Map();
  for (const n of nodes) {
    const d = await api(o, `/nodes/${encodeURIComponent(n.nodeId)}`);
    if (d) details.set(n.nodeId, d);
  }
  const probe = probeMac(iface.mac).toString('hex').match(/../g).join(':');
  return nodeRows(listed, machines, nodes, details, [probe]);
}

/** Redraws the table in place on a terminal; elsewhere prints it when it changes. */
function tablePrinter(ctx) {
  let last = '';
  let lines = 0;
  return (rows) => {
    const text = renderTable(rows);
    if (text === last) return;
    last = text;
    if (ctx.tty) {
      if (lines > 0) ctx.stream.write(`\x1b[${lines}A\x1b[J`);
      lines = text.split('\n').length - 1;
      ctx.stream.write(text);
    } else {
      ctx.stream.write(`--- ${new Date().toISOString()}\n${text}`);
    }
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForReports(ctx, o, listed, iface, server) {
  const print = tablePrinter(ctx);
  const until = Date.now() + o.waitSeconds * 1000;
  let rows = [];
  let exited;
  server?.once('exit', (code) => (exited = code));
  for (;;) {
    if (exited !== undefined) throw new ProvisionError('serverExited', `zeroboot serve exited (${exited}) while waiting; see ${path.join(o.stateDir, 'serve.log')}`);
    try {
      rows = await currentRows(o, listed, iface);
      print(rows);
    } catch (e) {
      if (Date.now() > until) throw new ProvisionError('timeout', `the management API on 127.0.0.1:${o.apiPort} did not answer: ${e.message}`);
    }
    const waiting = rows.filter((r) => r.listed && !r.reported);
    if (rows.length > 0 && waiting.length === 0) return rows;
    if (listed.length === 0) return rows;
    if (Date.now() > until) {
      const why = waiting.map((r) => `${r.mac} (${r.hostname}): ${r.stage === 'not seen' ? 'never seen: check its boot order (network/PXE first), cable and VLAN' : `stuck at ${r.stage}: curl http://127.0.0.1:${o.apiPort}/api/machines/${r.mac}`}`);
      throw Object.assign(new ProvisionError('timeout', `${waiting.length} listed server(s) did not report within ${o.waitSeconds} s: ${why.join('; ')}`), { rows });
    }
    await sleep(2000);
  }
}

async function main() {
  let o;
  let ctx = { ...reporter(process.argv.includes('--json')), changes: [], dryRun: false };
  const result = { ok: false };
  let server;
  let jsonDone = false;
  try {
    o = parseArgs(process.argv.slice(2));
    if (o.help) {
      process.stdout.write(HELP);
      return EXIT.ok;
    }
    ctx = { ...reporter(o.json), changes: [], dryRun: o.dryRun };
    Object.assign(result, { farmId: o.farmId, runmode: o.runmode, interface: o.interface, dryRun: o.dryRun });
    const c = await checks(ctx, o);
    Object.assign(result, { address: c.iface.address, dhcpMode: c.mode, otherDhcpServers: c.offers, advice: c.advice });
    const imageChanged = await imageStep(ctx, o);
    const configText = renderFarmConfig({
      farmId: o.farmId, runmode: o.runmode, iface: c.iface, dhcpMode: c.mode, nodes: c.nodes, imageDir: o.imageDir,
      stateDir: o.stateDir, httpPort: o.httpPort, apiPort: o.apiPort, signedChain: c.signedChain, kernelArgs: o.kernelArgs, pool: o.pool,
    });
    // The media before the server: files first, the process that serves them last.
    await mediaStep(ctx, o, c.iface);
    const stale = `zeroboot serve (pid ${c.ownServer?.pid}) runs with the previous configuration: stop it and run again to start one with the new`;
    // Refused before writing: a later run must still see the change and start the new server.
    if (o.foreground && c.ownServer && !ctx.dryRun && (imageChanged || (await readOr(o.config, '')) !== configText)) throw new ProvisionError('portBusy', stale);
    const configChanged = await ensureFile(ctx, o.config, configText, 'configuration');
    if (o.foreground) {
      if (c.ownServer && (configChanged || imageChanged)) {
        ctx.changes.push({ step: 'server', action: `stop zeroboot serve (pid ${c.ownServer.pid}) and start it with the new configuration` });
        ctx.say(`server: ${stale}`);
      } else if (c.ownServer) ctx.say(`server: zeroboot serve already runs (pid ${c.ownServer.pid}); not starting another`);
      else {
        ctx.changes.push({ step: 'server', action: 'run zeroboot serve in the foreground' });
        if (ctx.dryRun) ctx.say('server: would run zeroboot serve in the foreground');
        else {
          server = await startForeground(ctx, o);
          // Stopped before the wait is over: the server goes with the script, never left behind.
          const early = (sig) => {
            if (server.exitCode === null) server.kill('SIGTERM');
            process.exit(sig === 'SIGINT' ? 130 : 143);
          };
          process.once('SIGINT', early);
          process.once('SIGTERM', early);
          server.stopEarly = () => (process.off('SIGINT', early), process.off('SIGTERM', early));
        }
      }
    } else {
      await serviceStep(ctx, o, configChanged || imageChanged);
    }
    result.changes = ctx.changes;
    ctx.say(ctx.changes.length === 0 ? 'nothing to change: the host is provisioned as asked' : `${ctx.changes.length} change(s)${ctx.dryRun ? ' would be made (dry run: none made)' : ' made'}`);
    if (!ctx.dryRun && o.wait) {
      if (c.nodes.length > 0) ctx.say(`waiting for ${c.nodes.length} listed server(s) to send their signed report (up to ${o.waitSeconds} s)`);
      result.nodes = await waitForReports(ctx, o, c.nodes, c.iface, server);
      if (c.nodes.length > 0) ctx.say(`all ${c.nodes.length} listed server(s) reported`);
    }
    result.ok = true;
    if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    jsonDone = true;
    if (server) {
      ctx.say(`zeroboot serve keeps running in the foreground (pid ${server.pid}); Ctrl-C stops it`);
      const print = tablePrinter(ctx);
      server.stopEarly();
      const stop = new Promise((resolve) => {
        process.once('SIGINT', () => resolve('signal'));
        process.once('SIGTERM', () => resolve('signal'));
        server.once('exit', () => resolve('exit'));
      });
      let why;
      while (!why) {
        why = await Promise.race([stop, sleep(3000).then(() => undefined)]);
        if (!why) await currentRows(o, c.nodes, c.iface).then(print, () => undefined);
      }
      if (why === 'exit') throw new ProvisionError('serverExited', `zeroboot serve exited (${server.exitCode}); see ${path.join(o.stateDir, 'serve.log')}`);
      if (server.exitCode === null) server.kill('SIGTERM');
    }
    return EXIT.ok;
  } catch (e) {
    if (server && server.exitCode === null) server.kill('SIGTERM');
    const err = e instanceof ProvisionError ? e : new ProvisionError('unexpected', e?.message ?? String(e));
    if (e?.rows) result.nodes = e.rows;
    process.stderr.write(`provision-farm: ${err.message}\n`);
    if (ctx.changes.length > 0) result.changes = ctx.changes;
    if (!jsonDone && (o?.json || process.argv.includes('--json'))) process.stdout.write(JSON.stringify({ ...result, ok: false, error: err.message, check: err.exit, exitCode: err.code }, null, 2) + '\n');
    return err.code;
  }
}

process.exitCode = await main();
