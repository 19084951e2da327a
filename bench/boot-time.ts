// Boot time of a QEMU node (TCG) from QEMU start to the image's
// `ZEROBOOT-UP` marker, side by side in one run: the default image served
// by zeroboot (full DHCP, chain script, per-machine script, HTTP) and the
// same image served by the usual pair, dnsmasq (DHCP, iPXE user class ->
// the image's own boot.ipxe) + nginx (HTTP), each in its own namespace
// with the same bridge, router advertisements and profile. One VM at a
// time, servers taking turns boot by boot; medians per stage and the ratio
// zeroboot / reference are printed (target <= 1.05).
// The reference dnsmasq sends option 60 "PXEClient" to iPXE, as zeroboot
// does: without it iPXE waits 2 s for ProxyDHCP offers, on the reference's
// side only. --untuned-reference also boots against a second dnsmasq
// without it (dnsmasq's defaults) and prints that ratio as well.
//   node bench/boot-time.ts [--runs N] [--profile small-bios] [--untuned-reference]
import path from 'node:path';
import { parseBenchArgs } from '../harness/bench-args.ts';
import { startRig } from '../qemu/rig.ts';
import type { Rig } from '../qemu/rig.ts';
import { waitForOutput } from '../lib/process.ts';
import { defaultImage } from '../harness/qemu-image.ts';
import { startNginx } from '../harness/nginx.ts';

const { values } = parseBenchArgs('bench/boot-time.ts', { options: { runs: { type: 'string', default: '3' }, profile: { type: 'string', default: 'small-bios' }, 'untuned-reference': { type: 'boolean', default: false } } });
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

/** dnsmasq + nginx in a rig's namespace: iPXE gets the image's boot.ipxe, which fetches vmlinuz and initramfs.img next to it. */
async function startReference(rig: Rig, image: string, tuned: boolean): Promise<void> {
  const dir = path.join(rig.workDir, 'reference');
  await startNginx(rig.ns, { dir, root: image, address: rig.address, port: NGINX_PORT, connections: 256 }, 'boot.ipxe');
  const s = rig.network.subnet;
  const dnsmasq = rig.ns.spawn('dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--log-facility=-', '--port=0', '--pid-file=',
    '--bind-interfaces', `--interface=${rig.network.bridge}`,
    `--dhcp-range=${s.poolStart},${s.poolEnd},${s.netmask},10m`, '--no-ping',
    `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
    '--dhcp-userclass=set:ipxe,iPXE',
    `--dhcp-boot=tag:ipxe,http://${rig.address}:${NGINX_PORT}/boot.ipxe`,
    '--dhcp-boot=tag:!ipxe,undionly.kpxe', '--enable-tftp', '--tftp-root=/usr/lib/ipxe',
    ...(tuned ? ['--dhcp-option-force=tag:ipxe,60,PXEClient'] : []),
  ]);
  await waitForOutput(dnsmasq, /DHCP, sockets bound exclusively/, 10_000);
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

interface Side {
  name: string;
  rig: Rig;
  runs: Times[];
}

const image = await defaultImage();
const sides: Side[] = [];
try {
  sides.push({ name: 'zeroboot', rig: await startRig({ imageDir: image, kvm: 'auto' }), runs: [] });
  for (const tuned of values['untuned-reference'] ? [true, false] : [true]) {
    const rig = await startRig({ server: false, kvm: 'auto' });
    sides.push({ name: tuned ? 'reference' : 'untuned', rig, runs: [] });
    await startReference(rig, image, tuned);
  }
  const [ours, ...references] = sides;
  process.stdout.write(`boot time, ${PROFILE}, QEMU start to "${MARKER.trim()}" (${ours.rig.accel}), image ${image}; reference: dnsmasq sends option 60 to iPXE${references.length > 1 ? ', untuned: without it' : ''}\n`);
  // One unmeasured boot each: page cache, first-run costs.
  for (const side of sides) await bootOnce(side.rig);
  for (let i = 0; i < RUNS; i++) {
    // Rotate who goes first so a slow spell on the machine hits every side.
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(i + k) % sides.length];
      const at = await bootOnce(side.rig);
      side.runs.push(at);
      process.stdout.write(`  run ${i + 1} ${side.name.padEnd(9)} ${describe(at)}\n`);
    }
  }
  const medians = (side: Side) => Object.fromEntries(STAGES.map(([stage]) => [stage, median(side.runs.map((r) => r[stage]))])) as Times;
  const a = medians(ours);
  process.stdout.write('median seconds from QEMU start (iPXE running, DHCP done, kernel started, /init, marker)\n');
  process.stdout.write(`  zeroboot (DHCP + chain script + machine script + HTTP): ${describe(a)}\n`);
  for (const ref of references) {
    const b = medians(ref);
    const label = ref.name === 'reference' ? 'dnsmasq + nginx (DHCP + the image\'s boot.ipxe + HTTP): ' : 'untuned dnsmasq (no option 60) + nginx:                ';
    process.stdout.write(`  ${label} ${describe(b)}\n`);
    process.stdout.write(`  network part (iPXE running to kernel started): zeroboot ${(a.kernel - a.iPXE).toFixed(2)} s, ${ref.name} ${(b.kernel - b.iPXE).toFixed(2)} s\n`);
  }
  for (const ref of references) {
    const b = medians(ref);
    process.stdout.write(`ratio zeroboot / ${ref.name}${ref.name === 'reference' ? '' : ' reference'}, QEMU start to marker: ${(a.up / b.up).toFixed(3)}${ref.name === 'reference' ? ' (target <= 1.05)' : ''}\n`);
  }
  process.stdout.write(`absolute TCG time ${a.up.toFixed(2)} s\n`);
} finally {
  for (const side of sides) await side.rig.stop();
}
