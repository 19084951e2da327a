// "Why didn't it boot?" against the whole server (zeroboot serve) in a
// namespace, each cause reproduced by a crafted client with real tools:
// a chainload loop (iPXE's DHCP not recognised, so it is handed the iPXE
// binary again), a node stuck in its image (kernel and initrd fetched, no
// report), and an offer never requested. The answer comes from the
// management API, /api/machines/<mac>/why.
import test from 'ava';
import { mkdtemp, writeFile, mkdir, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns, waitForOutput } from '../helpers/netns.ts';
import { probe } from '../helpers/dhcp-harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER = '10.79.0.1';
const API = 'http://127.0.0.1:8081/api';
const LOOP_MAC = '52:54:00:bb:00:01';
const STUCK_MAC = '52:54:00:bb:00:02';
const SHY_MAC = '52:54:00:bb:00:03';

let ns: Netns;
let dir: string;
const hosts: Record<string, Netns> = {};

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'zb-why-'));
  await mkdir(path.join(dir, 'images'), { recursive: true });
  await writeFile(path.join(dir, 'images/vmlinuz'), Buffer.alloc(200_000, 7));
  await writeFile(path.join(dir, 'images/initramfs.img'), Buffer.alloc(100_000, 8));
  await writeFile(path.join(dir, 'udhcpc.sh'), '#!/bin/sh\n[ "$1" = bound ] || exit 0\necho "ip=$ip"; echo "boot_file=$boot_file"\n');
  await chmod(path.join(dir, 'udhcpc.sh'), 0o755);
  await writeFile(
    path.join(dir, 'zeroboot.yaml'),
    `server:
  address: ${SERVER}
  interfaces: [br0]
  stateDir: state
  dhcp: { mode: full, pool: { start: 10.79.0.100, end: 10.79.0.120, router: ${SERVER} } }
  http: { port: 8080 }
store:
  - { prefix: images, dir: images }
profiles:
  - { name: zos, kernel: images/vmlinuz, initrd: images/initramfs.img, args: { runmode: test } }
groups:
  - { name: all, profile: zos, selector: {} }
`,
  );
  ns = await Netns.create('zbwhy');
  await ns.bridge('br0', `${SERVER}/24`);
  for (const mac of [LOOP_MAC, STUCK_MAC, SHY_MAC]) hosts[mac] = await ns.host('br0', { mac });
  const server = ns.spawn(path.join(ROOT, 'bin/zeroboot'), ['serve', '--config', path.join(dir, 'zeroboot.yaml')]);
  await waitForOutput(server, /dhcp +full on br0/, 60_000);
});

test.after.always(async () => {
  await ns?.destroy();
  await rm(dir, { recursive: true, force: true });
});

/** DHCP as a BIOS PXE ROM (or, with the user class, as iPXE); the address is put on the host. */
async function dhcp(host: Netns, ipxe: boolean): Promise<{ ip: string; bootFile: string }> {
  const r = await host.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '4', '-T', '2', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000', ...(ipxe ? ['-x', '0x4d:69505845'] : []), '-s', path.join(dir, 'udhcpc.sh')], { timeout: 60_000 });
  const ip = /^ip=(.*)$/m.exec(r.stdout)?.[1];
  const bootFile = /^boot_file=(.*)$/m.exec(r.stdout)?.[1];
  if (!ip || !bootFile) throw new Error(`udhcpc got no lease: ${r.stdout} ${r.stderr}`);
  await host.exec('ip', ['addr', 'replace', `${ip}/24`, 'dev', 'eth0']);
  return { ip, bootFile };
}

async function tftp(host: Netns, file: string): Promise<void> {
  const r = await host.exec('atftp', ['--option', 'blksize 1400', '-g', '-r', file, '-l', '/dev/null', SERVER], { timeout: 60_000 });
  if (r.code !== 0) throw new Error(`atftp ${file}: ${r.stderr}`);
}

interface Why {
  mac: string;
  stage: string;
  state: string;
  cause?: { id: string; title: string; explanation: string; advice: string };
  evidence: { kind: string }[];
}

async function why(mac: string, query = ''): Promise<Why> {
  const r = await ns.exec('curl', ['-fsS', `${API}/machines/${mac}/why${query}`]);
  if (r.code !== 0) throw new Error(`why ${mac}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Why;
}

async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a chainload loop: iPXE is given the iPXE binary again; the cause names it and what to do', async (t) => {
  const host = hosts[LOOP_MAC];
  const first = await dhcp(host, false);
  t.is(first.bootFile, 'undionly.kpxe');
  await tftp(host, first.bootFile);
  // An iPXE build that sends no user class "iPXE" looks like the ROM again.
  const again = await dhcp(host, false);
  t.is(again.bootFile, 'undionly.kpxe');
  await tftp(host, again.bootFile);
  await until('the loop diagnosed', async () => (await why(LOOP_MAC, '?quietSeconds=1')).cause?.id === 'chainload-loop');
  const w = await why(LOOP_MAC, '?quietSeconds=1');
  t.is(w.stage, 'loader');
  t.regex(w.cause!.explanation, /undionly\.kpxe was fetched 2 times/);
  t.regex(w.cause!.advice, /user class "iPXE"/);
  t.is(w.evidence.length, 2);
});

test('stuck in the image: kernel and initrd fetched, no report; progressing until the report deadline passes', async (t) => {
  const host = hosts[STUCK_MAC];
  const pxe = await dhcp(host, false);
  await tftp(host, pxe.bootFile);
  const ipxe = await dhcp(host, true);
  t.is(ipxe.bootFile, `http://${SERVER}:8080/boot.ipxe`);
  const script = await host.exec('curl', ['-fsS', `http://${SERVER}:8080/ipxe?mac=${STUCK_MAC.replace(/:/g, '-')}`]);
  for (const url of new Set(script.stdout.match(/http:\/\/\S*(vmlinuz|initramfs\.img)\S*/g) ?? [])) {
    const r = await host.exec('curl', ['-fsS', '-o', '/dev/null', url]);
    t.is(r.code, 0, url);
  }
  const fresh = await why(STUCK_MAC);
  t.is(fresh.state, 'progressing', 'within the report deadline nothing is wrong yet');
  t.is(fresh.cause, undefined);
  await until('the report deadline', async () => (await why(STUCK_MAC, '?reportSeconds=1')).cause?.id === 'stuck-in-image');
  const w = await why(STUCK_MAC, '?reportSeconds=1');
  t.is(w.stage, 'initrd');
  t.regex(w.cause!.advice, /no driver for its NIC/);
});

test('an offer never requested: the client took another server\'s offer or never heard ours', async (t) => {
  const replies = await probe(hosts[SHY_MAC], {
    bind: { port: 68 },
    to: { address: '255.255.255.255', port: 67 },
    packets: [{ mac: SHY_MAC, xid: 0x51, flags: 0x8000, options: { 53: '01', 60: Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex'), 93: '0000' } }],
    waitMs: 5000,
    expect: 1,
  });
  t.is(replies.length, 1, 'the server offered');
  await until('the offer seen as not taken', async () => (await why(SHY_MAC, '?quietSeconds=1')).cause?.id === 'offer-not-taken');
  const w = await why(SHY_MAC, '?quietSeconds=1');
  t.is(w.stage, 'dhcp');
  t.regex(w.cause!.explanation, /offer\(s\) of 10\.79\.0\.1\d\d went out/);
});

test('a MAC the server never saw is a 404 with a hint; a bad threshold is a 400; the node port does not answer it', async (t) => {
  const unknown = await ns.exec('curl', ['-sS', '-w', '\n%{http_code}', `${API}/machines/52:54:00:bb:00:99/why`]);
  t.regex(unknown.stdout, /seen nothing from it[^]*\n404$/);
  const bad = await ns.exec('curl', ['-sS', '-w', '\n%{http_code}', `${API}/machines/${LOOP_MAC}/why?quietSeconds=0`]);
  t.regex(bad.stdout, /quietSeconds must be an integer[^]*\n400$/);
  const fromNode = await hosts[LOOP_MAC].exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER}:8080/api/machines/${LOOP_MAC}/why`]);
  t.is(fromNode.stdout, '404');
});
