// Boot time of a QEMU node (TCG) from QEMU start to the image's
// `ZEROBOOT-UP` marker, side by side in one run: the default image served
// by zeroboot (full DHCP, chain script, per-machine script, HTTP) and the
// same image served by the usual pair, dnsmasq (DHCP, iPXE user class ->
// the image's own boot.ipxe) + nginx (HTTP), each in its own namespace
// with the same bridge, router advertisements and profile. One VM at a
// time, servers taking turns boot by boot; medians per stage and the ratio
// zeroboot / reference are printed (target <= 1.05).
// --tuned-reference makes dnsmasq also send option 60 "PXEClient" to iPXE,
// which stops iPXE from waiting for ProxyDHCP offers (zeroboot sends it).
//   node bench/boot-time.ts [--runs N] [--profile small-bios] [--tuned-reference]
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRig } from '../qemu/rig.ts';
import type { Rig } from '../qemu/rig.ts';
import { waitForOutput } from '../qemu/netns.ts';
import { defaultImage } from '../test/helpers/qemu-image.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, profile: { type: 'string', default: 'small-bios' }, 'tuned-reference': { type: 'boolean', default: false } } });
const RUNS = Number(values.runs);
const PROFILE = values.profile!;
const NGINX_PORT = 8081;
const MARKER = 'ZEROBOOT-UP ';
const TIMEOUT_MS = 180_000;

/** Console lines that mark the stages of a boot, in order. */
const STAGES = [
  ['iPXE', 'iPXE initialising devices'],
  ['DHCP', 'Filename: '],
  ['kernel', 'Linux version '],
  ['init', 'Run /init'],
  ['up', MARKER],
] as const;
type Stage = (typeof STAGES)[number][0];
type Times = Record<Stage, number>;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function nginxConf(dir: string, root: string, address: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  server { listen ${address}:${NGINX_PORT}; root ${root}; }
}
`;
}

/** dnsmasq + nginx in a rig's namespace: iPXE gets the image's boot.ipxe, which fetches vmlinuz and initramfs.img next to it. */
async function startReference(rig: Rig, image: string): Promise<void> {
  const dir = path.join(rig.workDir, 'reference');
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  await writeFile(path.join(dir, 'nginx.conf'), nginxConf(dir, image, rig.address));
  const nginx = rig.ns.spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'nginx-error.log')]);
  const s = rig.network.subnet;
  const dnsmasq = rig.ns.spawn('dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--log-facility=-', '--port=0', '--pid-file=',
    '--bind-interfaces', `--interface=${rig.network.bridge}`,
    `--dhcp-range=${s.poolStart},${s.poolEnd},${s.netmask},10m`, '--no-ping',
    `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
    '--dhcp-userclass=set:ipxe,iPXE',
    `--dhcp-boot=tag:ipxe,http://${rig.address}:${NGINX_PORT}/boot.ipxe`,
    '--dhcp-boot=tag:!ipxe,undionly.kpxe', '--enable-tftp', '--tftp-root=/usr/lib/ipxe',
    ...(values['tuned-reference'] ? ['--dhcp-option-force=tag:ipxe,60,PXEClient'] : []),
  ]);
  await waitForOutput(dnsmasq, /DHCP, sockets bound exclusively/, 10_000);
  // nginx prints nothing when it starts: wait until it answers.
  for (let i = 0; ; i++) {
    const r = await rig.ns.exec('curl', ['-fsS', '-o', '/dev/null', `http://${rig.address}:${NGINX_PORT}/boot.ipxe`], { timeout: 5000 });
    if (r.code === 0) break;
    if (i > 50 || nginx.exitCode !== null) throw new Error(`nginx did not start: ${r.stderr.trim()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Seconds from QEMU start to each stage for one VM; the VM is stopped afterwards. */
async function bootOnce(rig: Rig): Promise<Times> {
  const [vm] = await rig.boot(PROFILE);
  try {
    const at = {} as Times;
    await Promise.all(
      STAGES.map(async ([stage, text]) => {
        await vm.console.waitFor(text, TIMEOUT_MS);
        at[stage] = (Date.now() - vm.startedAt) / 1000;
      }),
    );
    return at;
  } finally {
    await vm.stop();
  }
}

function describe(at: Times): string {
  return STAGES.map(([stage]) => `${stage} ${at[stage].toFixed(2)}`).join('  ');
}

const image = await defaultImage();
const ours = await startRig({ imageDir: image, kvm: 'auto' });
const reference = await startRig({ server: false, kvm: 'auto' });
try {
  await startReference(reference, image);
  process.stdout.write(`boot time, ${PROFILE}, QEMU start to "${MARKER.trim()}" (${ours.accel}), image ${image}${values['tuned-reference'] ? ', reference tuned (option 60)' : ''}\n`);
  const runs = { zeroboot: [] as Times[], reference: [] as Times[] };
  // One unmeasured boot each: page cache, first-run costs.
  await bootOnce(ours);
  await bootOnce(reference);
  for (let i = 0; i < RUNS; i++) {
    // Alternate who goes first so a slow spell on the machine hits both.
    const order = i % 2 === 0 ? (['zeroboot', 'reference'] as const) : (['reference', 'zeroboot'] as const);
    for (const who of order) {
      const at = await bootOnce(who === 'zeroboot' ? ours : reference);
      runs[who].push(at);
      process.stdout.write(`  run ${i + 1} ${who.padEnd(9)} ${describe(at)}\n`);
    }
  }
  const medians = (who: keyof typeof runs) => Object.fromEntries(STAGES.map(([stage]) => [stage, median(runs[who].map((r) => r[stage]))])) as Times;
  const a = medians('zeroboot');
  const b = medians('reference');
  process.stdout.write('median seconds from QEMU start (iPXE running, DHCP done, kernel started, /init, marker)\n');
  process.stdout.write(`  zeroboot (DHCP + chain script + machine script + HTTP): ${describe(a)}\n`);
  process.stdout.write(`  dnsmasq + nginx (DHCP + the image's boot.ipxe + HTTP):  ${describe(b)}\n`);
  process.stdout.write(`  network part (iPXE running to kernel started): zeroboot ${(a.kernel - a.iPXE).toFixed(2)} s, reference ${(b.kernel - b.iPXE).toFixed(2)} s\n`);
  process.stdout.write(`ratio zeroboot / reference, QEMU start to marker: ${(a.up / b.up).toFixed(3)} (target <= 1.05); absolute TCG time ${a.up.toFixed(2)} s\n`);
} finally {
  await ours.stop();
  await reference.stop();
}
