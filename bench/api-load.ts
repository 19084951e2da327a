// API load against DHCP latency: `zeroboot serve` (full mode) in a namespace,
// its timeline filled with --machines MACs by real DISCOVER/REQUEST
// exchanges, then DHCP DISCOVER->OFFER round trips measured from a client
// host, first alone, then while --clients API clients page through the whole
// machine list over and over. Prints p50/p99/max of the OFFER latency both
// ways and what the API clients fetched. The API clients run at nice 19
// (--nice): in real life they sit on other machines, and here they would
// otherwise take the server's CPU on a 2-core machine, which is not what
// this measures.
//   node bench/api-load.ts [--machines 10000] [--clients 20] [--seconds 20] [--rate 50] [--nice 19]
//     [--zeroboot bin/zeroboot] [--api http://127.0.0.1:8081/api]   (another build, another API address)
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns } from '../qemu/netns.ts';
import { folder, removeOnSignal } from '../harness/remove-on-signal.ts';
import { waitForOutput } from '../lib/process.ts';
import { buildPacket } from '../harness/dhcp-packet.ts';
import { decodeDhcp } from '../boot/dhcp/codec.ts';
import { bindSocketToDevice } from '../boot/netif/index.ts';
import { oneOf, parseBenchArgs, positiveInt, refuseFlag } from '../harness/bench-args.ts';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const SERVER = '10.71.0.1';

const SCRIPT = 'bench/api-load.ts';
// The user's flags, and --role (with --token) for the parts the run starts of itself.
const { values: a } = parseBenchArgs(SCRIPT, {
  options: {
    machines: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '50' },
    nice: { type: 'string', default: '19' },
    zeroboot: { type: 'string', default: path.join(ROOT, 'bin/zeroboot') },
    api: { type: 'string', default: 'http://127.0.0.1:8081/api' },
    role: { type: 'string', default: '' },
    token: { type: 'string' },
  },
});
const MACHINES = positiveInt(SCRIPT, 'machines', a.machines, 16_000_000);
const CLIENTS = positiveInt(SCRIPT, 'clients', a.clients, 10_000);
const SECONDS = positiveInt(SCRIPT, 'seconds', a.seconds);
const RATE = positiveInt(SCRIPT, 'rate', a.rate, 1_000_000);
if (!/^-?\d+$/.test(a.nice) || Math.abs(Number(a.nice)) > 19) refuseFlag(SCRIPT, `--nice must be an integer from -19 to 19, got "${a.nice}"`);

const macOf = (i: number) => `02:aa:${[i >> 16, (i >> 8) & 255, i & 255, 1].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
const ipHex = (ip: string) => Buffer.from(ip.split('.').map(Number)).toString('hex');

async function dhcpSocket(onReply: (xid: number, type: number, yiaddr: string) => void): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('message', (buf) => {
    try {
      const p = decodeDhcp(buf);
      onReply(p.xid, p.options.get(53)?.[0] ?? 0, p.yiaddr);
    } catch {}
  });
  await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', resolve));
  bindSocketToDevice(socket, 'eth0');
  socket.setBroadcast(true);
  return socket;
}

/** Role "fill", in the client host: DISCOVER then REQUEST for every MAC, `window` exchanges in flight. */
async function fill(machines: number): Promise<void> {
  let acked = 0;
  let next = 0;
  const pending = new Map<number, { i: number; at: number }>();
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const send = (i: number, type: 'discover' | 'request', ip?: string) => {
    const xid = (i + 1) * 2 + (type === 'request' ? 1 : 0);
    pending.set(xid, { i, at: Date.now() });
    const options: Record<string, string> = type === 'discover' ? { 53: '01' } : { 53: '03', 50: ipHex(ip!), 54: ipHex(SERVER) };
    socket.send(buildPacket({ mac: macOf(i), xid, flags: 0x8000, options }), 67, '255.255.255.255');
  };
  const more = () => {
    while (pending.size < 64 && next < machines) send(next++, 'discover');
    if (acked >= machines) done();
  };
  const socket = await dhcpSocket((xid, type, yiaddr) => {
    const p = pending.get(xid);
    if (!p) return;
    pending.delete(xid);
    if (type === 2) send(p.i, 'request', yiaddr);
    else if (type === 5) acked++;
    more();
  });
  // Lost packets are sent again.
  const retry = setInterval(() => {
    for (const [xid, p] of pending) if (Date.now() - p.at > 2000) {
      pending.delete(xid);
      send(p.i, 'discover');
    }
    more();
  }, 500);
  more();
  await finished;
  clearInterval(retry);
  socket.close();
  process.stdout.write(JSON.stringify({ acked }) + '\n');
}

/** Role "probe", in the client host: DISCOVERs for known MACs at `rate`/s for `seconds`; OFFER latencies. */
async function probe(machines: number, rate: number, seconds: number): Promise<void> {
  const sent = new Map<number, bigint>();
  const ms: number[] = [];
  const socket = await dhcpSocket((xid, type) => {
    const t0 = sent.get(xid);
    if (t0 === undefined || type !== 2) return;
    sent.delete(xid);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  });
  const total = rate * seconds;
  for (let k = 0; k < total; k++) {
    const xid = 0x10000000 + k;
    sent.set(xid, process.hrtime.bigint());
    socket.send(buildPacket({ mac: macOf((k * 7919) % machines), xid, flags: 0x8000, options: { 53: '01' } }), 67, '255.255.255.255');
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await new Promise((r) => setTimeout(r, 2000));
  socket.close();
  ms.sort((a, b) => a - b);
  const q = (f: number) => ms[Math.min(ms.length - 1, Math.floor(f * ms.length))] ?? NaN;
  process.stdout.write(JSON.stringify({ sent: total, answered: ms.length, p50: q(0.5), p99: q(0.99), max: ms.at(-1) ?? NaN }) + '\n');
}

/** Role "api", in the server's namespace: `clients` loops, each paging through the whole list, for `seconds`. */
async function apiClients(api: string, clients: number, seconds: number, token: string | undefined): Promise<void> {
  const until = Date.now() + seconds * 1000;
  let requests = 0;
  let bytes = 0;
  let lists = 0;
  let maxBody = 0;
  let failures = 0;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const loop = async () => {
    while (Date.now() < until) {
      let cursor: string | null = null;
      do {
        const r: Response = await fetch(`${api}/machines?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { headers });
        const body: string = await r.text();
        requests++;
        bytes += body.length;
        maxBody = Math.max(maxBody, body.length);
        if (r.status !== 200) {
          failures++;
          break;
        }
        // An unpaginated server answers everything at once, with no "next".
        cursor = (JSON.parse(body) as { next?: string | null }).next ?? null;
      } while (cursor && Date.now() < until);
      lists++;
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  process.stdout.write(JSON.stringify({ requests, lists, mb: +(bytes / 1e6).toFixed(1), maxBodyKb: Math.round(maxBody / 1024), failures }) + '\n');
}

function lastJson(out: string): Record<string, number> {
  const line = out.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as Record<string, number>;
  } catch {
    throw new Error(`a bench role printed no result: ${out.slice(-500)}`);
  }
}

async function main(): Promise<void> {
  const zeroboot = path.resolve(a.zeroboot);
  const api = a.api;
  const dir = await mkdtemp(path.join(tmpdir(), 'zb-api-load-'));
  const ns = await Netns.create('zbapi');
  const unhook = removeOnSignal([folder(dir), ns]);
  const node = (role: string, ...rest: string[]): [string, string[]] => [process.execPath, ['--disable-warning=ExperimentalWarning', SELF, '--role', role, ...rest]];
  try {
    await ns.bridge('br0', `${SERVER}/16`);
    const client = await ns.host('br0', { mac: '02:bb:00:00:00:01', cidr: '10.71.0.2/16' });
    await writeFile(
      path.join(dir, 'zeroboot.yaml'),
      `server:
  address: ${SERVER}
  interfaces: [br0]
  stateDir: ${dir}/state
  dhcp: { mode: full, pool: { start: 10.71.1.0, end: 10.71.255.254, subnetMask: 255.255.0.0, leaseSeconds: 86400 } }
  http: { port: 8080 }
  tftp: { enabled: false }
profiles:
  - { name: zos, kernel: images/zos/vmlinuz, initrd: images/zos/initramfs.img, args: { runmode: test, farmer_id: 42 } }
groups:
  - { name: all, profile: zos, selector: {} }
`,
    );
    const server = ns.spawn(zeroboot, ['serve', '--config', path.join(dir, 'zeroboot.yaml'), '--log-level', 'warn']);
    const listening = await waitForOutput(server, /dhcp +full on br0/, 60_000);
    const tokenFile = /bearer token in (\S+?)\)/.exec(listening)?.[1];
    const token = tokenFile ? spawnSync('cat', [tokenFile], { encoding: 'utf8' }).stdout.trim() : undefined;

    const t0 = Date.now();
    const filled = lastJson((await client.exec(...node('fill', '--machines', String(MACHINES)), { timeout: 600_000 })).stdout);
    console.log(`timeline filled: ${filled.acked} machines leased (DISCOVER/OFFER/REQUEST/ACK) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const probeArgs = node('probe', '--machines', String(MACHINES), '--rate', String(RATE), '--seconds', String(SECONDS));
    const quiet = lastJson((await client.exec(...probeArgs, { timeout: (SECONDS + 60) * 1000 })).stdout);
    const [loaded, load] = await Promise.all([
      client.exec(...probeArgs, { timeout: (SECONDS + 60) * 1000 }),
      ns.exec('nice', ['-n', a.nice, ...node('api', '--api', api, '--clients', String(CLIENTS), '--seconds', String(SECONDS + 2), ...(token ? [`--token=${token}`] : [])).flat()], { timeout: (SECONDS + 120) * 1000 }),
    ]);
    const busy = lastJson(loaded.stdout);
    const apiStats = lastJson(load.stdout);
    const row = (name: string, r: Record<string, number>) =>
      `${name.padEnd(28)} ${String(r.answered).padStart(5)}/${r.sent}  p50 ${r.p50.toFixed(2).padStart(7)} ms  p99 ${r.p99.toFixed(2).padStart(7)} ms  max ${r.max.toFixed(2).padStart(7)} ms`;
    console.log(`DHCP DISCOVER->OFFER at ${RATE}/s for ${SECONDS} s, ${MACHINES} machines on the timeline (${zeroboot}):`);
    console.log(row('no API clients', quiet));
    console.log(row(`${CLIENTS} API clients`, busy));
    console.log(`API clients (${api}): ${apiStats.requests} requests, ${apiStats.lists} full listings, ${apiStats.mb} MB, largest answer ${apiStats.maxBodyKb} KiB, ${apiStats.failures} failed`);
  } finally {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
    unhook();
  }
}

const role = oneOf(SCRIPT, 'role', a.role, ['', 'fill', 'probe', 'api']);
if (role === 'fill') await fill(MACHINES);
else if (role === 'probe') await probe(MACHINES, RATE, SECONDS);
else if (role === 'api') await apiClients(a.api, CLIENTS, SECONDS, a.token);
else await main();
