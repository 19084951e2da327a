// `zeroboot demo`: the server in a private network namespace, then a client
// host on the same bridge that walks the PXE path with real tools (udhcpc as
// a PXE ROM, TFTP for the iPXE binary, udhcpc as iPXE, curl for the scripts)
// and prints what the server recorded. Everything is torn down at the end.
import { mkdtemp, writeFile, rm, chmod, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Netns, waitForOutput } from '../../qemu/netns.ts';
import { parseCommand, UsageError } from '../args.ts';
import { untilSignal } from './serve.ts';

export const DEMO_HELP = `Usage: zeroboot demo [options]

Creates a private network namespace with a bridge (10.77.0.1/24), starts
'zeroboot serve' in it (full DHCP, TFTP, HTTP), boots a client host through
the PXE path with real tools, prints the boot-event timeline, and tears
everything down. Needs root (network namespaces).

Options:
  --keep       keep serving after the walk-through until Ctrl-C
  -h, --help   show this help
`;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_IP = '10.77.0.1';
const CLIENT_MAC = '52:54:00:12:34:56';

function demoConfig(stateDir: string, imagesDir: string): string {
  return `server:
  address: ${SERVER_IP}
  interfaces: [zb0]
  stateDir: ${stateDir}
  dhcp:
    mode: full
    pool: { start: 10.77.0.100, end: 10.77.0.200, subnetMask: 255.255.255.0, router: ${SERVER_IP}, dns: [${SERVER_IP}], leaseSeconds: 600 }
  http: { port: 8080 }
  tftp: { port: 69 }
  ipxeDir: /usr/lib/ipxe
store:
  - { prefix: images, dir: ${imagesDir} }
profiles:
  - name: zos
    kernel: images/default/vmlinuz
    initrd: images/default/initramfs.img
    args: { runmode: prod, version: v3, panic: 7200, farmer_id: 0, console: ttyS0 }
groups:
  - { name: default, profile: zos, selector: {} }
`;
}

const UDHCPC_SCRIPT = `#!/bin/sh
[ "$1" = bound ] || exit 0
echo "ip=$ip"; echo "siaddr=$siaddr"; echo "boot_file=$boot_file"; echo "serverid=$serverid"
`;

function field(out: string, key: string): string | undefined {
  return out.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1];
}

export async function demoCommand(argv: string[]): Promise<number> {
  const p = parseCommand('demo', argv, { keep: { type: 'boolean' } });
  if (p.values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  if (p.positionals.length > 0) throw new UsageError(`demo: unexpected argument "${p.positionals[0]}"`);
  if (process.getuid?.() !== 0) throw new UsageError('demo: needs root to create a network namespace (run it with sudo)');

  const work = await mkdtemp(path.join(tmpdir(), 'zeroboot-demo-'));
  const ns = await Netns.create('zb-demo');
  const step = (s: string) => process.stdout.write(`\n== ${s}\n`);
  try {
    await ns.bridge('zb0', `${SERVER_IP}/24`);
    const client = await ns.host('zb0', { mac: CLIENT_MAC });
    await writeFile(path.join(work, 'zeroboot.yaml'), demoConfig(path.join(work, 'state'), path.join(work, 'images')));
    const script = path.join(work, 'udhcpc.sh');
    await writeFile(script, UDHCPC_SCRIPT);
    await chmod(script, 0o755);

    step(`server: zeroboot serve in namespace ${ns.name}`);
    const server = ns.spawn(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'cli/zeroboot.ts'), 'serve', '--config', path.join(work, 'zeroboot.yaml')]);
    server.stderr!.on('data', (d: Buffer) => process.stdout.write(`  [server] ${d}`.replace(/\n(?=.)/g, '\n  [server] ')));
    const listening = await waitForOutput(server, /listening[\s\S]*dhcp .*\n/, 15_000);
    process.stdout.write(listening.replace(/^/gm, '  '));

    step(`client ${CLIENT_MAC}: DHCP as a BIOS PXE ROM`);
    const pxe = await client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '3', '-T', '2', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', '-O', 'bootfile', '-s', script], { timeout: 20_000 });
    const bootFile = field(pxe.stdout, 'boot_file');
    process.stdout.write(`  address ${field(pxe.stdout, 'ip') ?? '(none)'}, next-server ${field(pxe.stdout, 'siaddr') ?? '?'}, boot file ${bootFile ?? '(none)'}\n`);
    if (!bootFile) throw new Error('demo: the PXE client got no boot file');
    await client.ip('addr', 'add', `${field(pxe.stdout, 'ip')}/24`, 'dev', 'eth0');

    step(`client: TFTP ${bootFile}`);
    const local = path.join(work, 'fetched-' + path.basename(bootFile));
    const tftp = await client.exec('busybox', ['tftp', '-g', '-b', '1468', '-r', bootFile, '-l', local, SERVER_IP], { timeout: 30_000 });
    if (tftp.code !== 0) throw new Error(`demo: TFTP failed: ${tftp.stderr.trim()}`);
    const got = createHash('sha256').update(await readFile(local)).digest('hex');
    const want = createHash('sha256').update(await readFile(path.join('/usr/lib/ipxe', bootFile))).digest('hex');
    process.stdout.write(`  ${bootFile}: sha256 ${got.slice(0, 16)}… ${got === want ? 'matches' : 'DIFFERS from'} /usr/lib/ipxe/${bootFile}\n`);

    step('client: DHCP as iPXE (user class "iPXE")');
    const ipxe = await client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '3', '-T', '2', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', '-x', '0x4d:69505845', '-O', 'bootfile', '-s', script], { timeout: 20_000 });
    const scriptUrl = field(ipxe.stdout, 'boot_file');
    process.stdout.write(`  boot file ${scriptUrl ?? '(none)'}\n`);
    if (!scriptUrl?.startsWith('http')) throw new Error('demo: iPXE did not get an HTTP script URL');

    step('client: the iPXE scripts over HTTP');
    const chain = await client.exec('curl', ['-fsS', scriptUrl], { timeout: 10_000 });
    process.stdout.write(chain.stdout.replace(/^/gm, '  | '));
    const machineUrl = `http://${SERVER_IP}:8080/ipxe?mac=${CLIENT_MAC.replace(/:/g, '-')}&arch=x86_64`;
    const perMachine = await client.exec('curl', ['-fsS', machineUrl], { timeout: 10_000 });
    process.stdout.write(perMachine.stdout.replace(/^/gm, '  | '));

    step(`timeline for ${CLIENT_MAC} (GET /api/machines/${CLIENT_MAC})`);
    const api = await client.exec('curl', ['-fsS', `http://${SERVER_IP}:8080/api/machines/${CLIENT_MAC}`], { timeout: 10_000 });
    try {
      const body = JSON.parse(api.stdout) as { timeline?: { time: string; kind: string; detail?: object; reason?: string }[] };
      for (const e of body.timeline ?? []) {
        process.stdout.write(`  ${e.time}  ${e.kind.padEnd(14)} ${e.detail ? JSON.stringify(e.detail) : ''}${e.reason ? ` reason: ${e.reason}` : ''}\n`);
      }
    } catch {
      process.stdout.write(api.stdout);
    }
    process.stdout.write('\nThe kernel and initrd come from `zeroboot image build` (not built in this demo yet).\n');

    if (p.values.keep) {
      process.stdout.write(`\nServing in namespace ${ns.name} (enter it with: ip netns exec ${ns.name} bash). Ctrl-C stops.\n`);
      await untilSignal();
    }
    return 0;
  } finally {
    await ns.destroy();
    await rm(work, { recursive: true, force: true });
    process.stdout.write(`\n== torn down: namespace ${ns.name} and its processes\n`);
  }
}
