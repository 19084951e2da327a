// The whole server through its CLI, in a namespace: a client host walks the
// PXE path with real tools and the timeline shows every stage for its MAC.
// The API answers on the management listener (loopback of the server's
// namespace), not on the port the nodes use; labels come only from the
// address leased to their MAC.
import test from 'ava';
import { mkdtemp, writeFile, mkdir, rm, readFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Netns, waitForOutput } from '../helpers/netns.ts';
import { guidFromString } from '../../boot/dhcp/options.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAC = '52:54:00:aa:00:01';
const SIGNED_MAC = '52:54:00:aa:00:02';
// The signed machine is chosen by its SMBIOS UUID (option 97), which only DHCP sees; GRUB must get the same profile.
const SIGNED_UUID = '848acd93-4178-4033-82dd-9abc8abfb6d7';
const ATTACKER_MAC = '52:54:00:aa:00:66';
const API = 'http://127.0.0.1:8081/api';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ns: Netns;
let client: Netns;
let signedClient: Netns;
let attacker: Netns;
let dir: string;
let server: ReturnType<Netns['spawn']>;
const kernel = Buffer.alloc(3 * 1024 * 1024 + 17, 7);

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-serve-'));
  await mkdir(path.join(dir, 'images/zos'), { recursive: true });
  await writeFile(path.join(dir, 'images/zos/vmlinuz'), kernel);
  await writeFile(path.join(dir, 'images/zos/initramfs.img'), Buffer.from('initrd'));
  // stand-ins for the image's signed loaders: the server only serves them
  await writeFile(path.join(dir, 'images/zos/shimx64.efi'), Buffer.alloc(70_000, 1));
  await writeFile(path.join(dir, 'images/zos/grubx64.efi'), Buffer.alloc(90_000, 2));
  await writeFile(
    path.join(dir, 'udhcpc.sh'),
    '#!/bin/sh\n[ "$1" = bound ] || exit 0\necho "ip=$ip"; echo "siaddr=$siaddr"; echo "boot_file=$boot_file"\n',
  );
  await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
  await writeFile(
    path.join(dir, 'zeroboot.yaml'),
    `server:
  address: 10.78.0.1
  interfaces: [br0]
  stateDir: state
  dhcp: { mode: full, pool: { start: 10.78.0.100, end: 10.78.0.110, router: 10.78.0.1 } }
  http: { port: 8080 }
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/zos/vmlinuz, initrd: images/zos/initramfs.img, args: { runmode: test, farmer_id: 42, version: v3 } }
  - { name: signed, kernel: images/zos/vmlinuz, initrd: images/zos/initramfs.img, args: { runmode: prod, farmer_id: 7 }, secureBoot: true }
groups:
  - { name: all, profile: zos, selector: {} }
  - { name: secure-rack, profile: signed, selector: { uuid: '${SIGNED_UUID}' } }
  - { name: evil-rack, profile: signed, selector: { serial: SN-EVIL } }
`,
  );
  ns = await Netns.create('zbserve');
  await ns.bridge('br0', '10.78.0.1/24');
  client = await ns.host('br0', { mac: MAC });
  signedClient = await ns.host('br0', { mac: SIGNED_MAC });
  attacker = await ns.host('br0', { mac: ATTACKER_MAC, cidr: '10.78.0.66/24' });
  server = ns.spawn(path.join(ROOT, 'bin/zeroboot'), ['serve', '--config', path.join(dir, 'zeroboot.yaml')]);
  await waitForOutput(server, /dhcp +full on br0/, 20_000);
});

test.after.always(async () => {
  await ns?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const udhcpc = (extra: string[]) =>
  client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', ...extra, '-s', path.join(dir, 'udhcpc.sh')], { timeout: 30_000 });
const field = (out: string, k: string) => out.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1];

test.serial('a client walks DHCP -> TFTP -> DHCP as iPXE -> HTTP and the timeline shows each stage', async (t) => {
  const pxe = await udhcpc([]);
  t.is(field(pxe.stdout, 'boot_file'), 'undionly.kpxe', pxe.stdout + pxe.stderr);
  t.is(field(pxe.stdout, 'siaddr'), '10.78.0.1');
  const ip = field(pxe.stdout, 'ip')!;
  t.regex(ip, /^10\.78\.0\.1(0\d|10)$/);
  await client.ip('addr', 'add', `${ip}/24`, 'dev', 'eth0');

  const out = path.join(dir, 'undionly.kpxe');
  const tftp = await client.exec('atftp', ['--option', 'blksize 1400', '-g', '-r', 'undionly.kpxe', '-l', out, '10.78.0.1'], { timeout: 30_000 });
  t.is(tftp.code, 0, tftp.stderr);
  t.is(sha(await readFile(out)), sha(await readFile('/usr/lib/ipxe/undionly.kpxe')));

  const ipxe = await udhcpc(['-x', '0x4d:69505845']);
  const url = field(ipxe.stdout, 'boot_file')!;
  t.is(url, 'http://10.78.0.1:8080/boot.ipxe');

  const chain = await client.exec('curl', ['-fsS', url]);
  t.regex(chain.stdout, /^#!ipxe/);
  const script = await client.exec('curl', ['-fsS', `http://10.78.0.1:8080/ipxe?mac=${MAC.replace(/:/g, '-')}&arch=x86_64`]);
  t.regex(script.stdout, /runmode=test/);
  t.regex(script.stdout, /farmer_id=42/);
  const kernelUrl = script.stdout.match(/http:\/\/\S*vmlinuz\S*/)?.[0];
  t.truthy(kernelUrl, script.stdout);
  const k = await client.exec('sh', ['-c', `curl -fsS '${kernelUrl}' | sha256sum`]);
  t.is(k.stdout.split(' ')[0], sha(kernel));

  const refused = await client.exec('curl', ['-sS', '-w', '\n%{http_code}', `http://10.78.0.1:8080/api/machines/${MAC}`]);
  t.regex(refused.stdout, /management listener[^]*\n404$/, 'a node cannot read the API on the port it boots from');
  const api = await ns.exec('curl', ['-fsS', `${API}/machines/${MAC}`]);
  const kinds: string[] = JSON.parse(api.stdout).timeline.map((e: { kind: string }) => e.kind);
  const order = ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'tftp.request', 'tftp.done', 'http.script', 'http.kernel'];
  let at = -1;
  for (const kind of order) {
    const next = kinds.indexOf(kind, at + 1);
    t.true(next > at, `${kind} after position ${at} in ${kinds.join(',')}`);
    at = next;
  }
});

test.serial('the signed UEFI chain: shim by DHCP, GRUB and its per-MAC configuration, kernel and initrd over TFTP', async (t) => {
  const uuidOpt = `00${guidFromString(SIGNED_UUID)!.toString('hex')}`;
  const dhcp = await signedClient.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007', '-x', `0x61:${uuidOpt}`, '-s', path.join(dir, 'udhcpc.sh')], { timeout: 30_000 });
  t.is(field(dhcp.stdout, 'boot_file'), 'images/zos/shimx64.efi', dhcp.stdout + dhcp.stderr);
  const ip = field(dhcp.stdout, 'ip')!;
  await signedClient.ip('addr', 'add', `${ip}/24`, 'dev', 'eth0');
  const get = async (remote: string): Promise<Buffer> => {
    const local = path.join(dir, `got-${sha(Buffer.from(remote)).slice(0, 8)}`);
    const r = await signedClient.exec('atftp', ['-g', '-r', remote, '-l', local, '10.78.0.1'], { timeout: 30_000 });
    t.is(r.code, 0, `${remote}: ${r.stderr}`);
    return readFile(local);
  };
  // what shim and GRUB ask for, in their order
  t.is(sha(await get('images/zos/shimx64.efi')), sha(Buffer.alloc(70_000, 1)));
  t.is(sha(await get('images/zos/grubx64.efi')), sha(Buffer.alloc(90_000, 2)));
  const optional = await signedClient.exec('atftp', ['-g', '-r', 'images/zos/revocations_sbat.efi', '-l', path.join(dir, 'none'), '10.78.0.1'], { timeout: 30_000 });
  t.not(optional.code, 0, 'a missing optional file is still "not found" for the client');
  t.regex((await get('/grub/grub.cfg')).toString(), /configfile "\$prefix\/grub\.cfg-\$net_default_mac"/);
  const own = (await get(`/grub/grub.cfg-${SIGNED_MAC}`)).toString();
  t.regex(own, /boots profile signed \(group secure-rack\)/);
  t.regex(own, /linux \/images\/zos\/vmlinuz runmode=prod farmer_id=7 zeroboot.server=http:\/\/10.78.0.1:8080 BOOTIF=01-52-54-00-aa-00-02;/);
  t.regex(own, /initrd \/images\/zos\/initramfs\.img;/);
  t.is(sha(await get('/images/zos/vmlinuz')), sha(kernel));

  const api = await ns.exec('curl', ['-fsS', `${API}/machines/${SIGNED_MAC}`]);
  const machine = JSON.parse(api.stdout);
  t.like(machine.labels, { uuid: SIGNED_UUID, arch: 'x86_64' }, 'the API shows the labels DHCP learned');
  t.like(machine.selection, { profile: 'signed', group: 'secure-rack' });
  const events: { kind: string; detail?: Record<string, unknown>; reason?: string }[] = machine.timeline;
  t.is(events.find((e) => e.kind === 'dhcp.offer')?.detail?.bootfile, 'images/zos/shimx64.efi');
  t.is(events.find((e) => e.kind === 'grub.config')?.detail?.profile, 'signed');
  const miss = events.find((e) => e.kind === 'tftp.error')!;
  t.is(miss.detail?.optional, true);
  t.regex(miss.reason ?? '', /optional/);
  t.true(events.some((e) => e.kind === 'tftp.done' && e.detail?.file === 'images/zos/vmlinuz'));
  // the other machines keep iPXE
  const other = await client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007', '-s', path.join(dir, 'udhcpc.sh')], { timeout: 30_000 });
  t.is(field(other.stdout, 'boot_file'), 'snponly.efi');
});

test.serial('a script request from another address serves a script but changes nothing DHCP and GRUB select for the MAC', async (t) => {
  const grubFor = async (host: Netns) => {
    const local = path.join(dir, `grub-${sha(Buffer.from(host.name)).slice(0, 8)}`);
    const r = await host.exec('atftp', ['-g', '-r', `/grub/grub.cfg-${MAC}`, '-l', local, '10.78.0.1'], { timeout: 30_000 });
    t.is(r.code, 0, r.stderr);
    return (await readFile(local)).toString();
  };
  const uefiOffer = async () => field((await client.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00007:UNDI:003016', '-x', '0x5d:0007', '-s', path.join(dir, 'udhcpc.sh')], { timeout: 30_000 })).stdout, 'boot_file');
  const evil = `http://10.78.0.1:8080/ipxe?mac=${MAC.replace(/:/g, '-')}&serial=SN-EVIL`;

  const script = await attacker.exec('curl', ['-fsS', evil]);
  t.regex(script.stdout, /runmode=prod/, 'the script follows the labels of the request, for that response only');
  t.regex(await grubFor(attacker), /boots profile zos \(group all\)/);
  t.is(await uefiOffer(), 'snponly.efi', 'DHCP still hands the machine iPXE, not the shim of the claimed group');
  const after = JSON.parse((await ns.exec('curl', ['-fsS', `${API}/machines/${MAC}`])).stdout);
  t.is(after.labels.serial, undefined);
  t.is(after.selection.profile, 'zos');
  t.regex(after.timeline.findLast((e: { kind: string }) => e.kind === 'http.script').detail.labels, /not stored: the request came from 10\.78\.0\.66/);
  const strangerMac = '52:54:00:aa:00:77';
  await attacker.exec('curl', ['-fsS', `http://10.78.0.1:8080/ipxe?mac=${strangerMac}&serial=SN-EVIL`]);
  t.regex((await ns.exec('curl', ['-sS', `${API}/machines/${strangerMac}`])).stdout, /no events or lease/, 'a stranger cannot put a new MAC on the timeline');

  // The same request from the address leased to the MAC is the machine speaking: its labels count.
  await client.exec('curl', ['-fsS', evil]);
  t.regex(await grubFor(client), /boots profile signed \(group evil-rack\)/);
  t.is(await uefiOffer(), 'images/zos/shimx64.efi');
});

test.serial('SIGTERM stops the server cleanly and the lease is on disk', async (t) => {
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  // The ip-netns wrapper execs into the server, so the pid is the server's.
  process.kill(server.pid!, 'SIGTERM');
  t.is(await exited, 0);
  const leases = await readFile(path.join(dir, 'state/leases.json'), 'utf8');
  t.regex(leases, new RegExp(MAC));
});
