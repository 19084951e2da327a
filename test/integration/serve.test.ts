// The whole server through its CLI, in a namespace: a client host walks the
// PXE path with real tools and the timeline shows every stage for its MAC.
import test from 'ava';
import { mkdtemp, writeFile, mkdir, rm, readFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Netns, waitForOutput } from '../helpers/netns.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAC = '52:54:00:aa:00:01';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ns: Netns;
let client: Netns;
let dir: string;
let server: ReturnType<Netns['spawn']>;
const kernel = Buffer.alloc(3 * 1024 * 1024 + 17, 7);

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-serve-'));
  await mkdir(path.join(dir, 'images/zos'), { recursive: true });
  await writeFile(path.join(dir, 'images/zos/vmlinuz'), kernel);
  await writeFile(path.join(dir, 'images/zos/initramfs.img'), Buffer.from('initrd'));
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
groups:
  - { name: all, profile: zos, selector: {} }
`,
  );
  ns = await Netns.create('zbserve');
  await ns.bridge('br0', '10.78.0.1/24');
  client = await ns.host('br0', { mac: MAC });
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

  const api = await client.exec('curl', ['-fsS', `http://10.78.0.1:8080/api/machines/${MAC}`]);
  const kinds: string[] = JSON.parse(api.stdout).timeline.map((e: { kind: string }) => e.kind);
  const order = ['dhcp.discover', 'dhcp.offer', 'dhcp.request', 'dhcp.ack', 'tftp.request', 'tftp.done', 'http.script', 'http.kernel'];
  let at = -1;
  for (const kind of order) {
    const next = kinds.indexOf(kind, at + 1);
    t.true(next > at, `${kind} after position ${at} in ${kinds.join(',')}`);
    at = next;
  }
});

test.serial('SIGTERM stops the server cleanly and the lease is on disk', async (t) => {
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  // The ip-netns wrapper execs into the server, so the pid is the server's.
  process.kill(server.pid!, 'SIGTERM');
  t.is(await exited, 0);
  const leases = await readFile(path.join(dir, 'state/leases.json'), 'utf8');
  t.regex(leases, new RegExp(MAC));
});
